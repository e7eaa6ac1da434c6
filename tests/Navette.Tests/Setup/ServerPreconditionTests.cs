using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>navette apply refuses nodes whose server settings cannot carry the replication, and changes nothing.</summary>
public sealed class ServerPreconditionTests(ITestOutputHelper output)
{
    private const string OneSubscription = """
        sets:
          shop: { tables: [public.items] }
        subscriptions:
          origin_to_replica: { from: origin, to: replica, sets: [shop] }
        """;

    private const string Items = "CREATE TABLE public.items (id int PRIMARY KEY, name text)";

    private async Task<List<string>> RefusedAsync(Dictionary<string, string> originSettings, string? originSetup = null)
    {
        var clusters = await ApplyKit.StartAsync(("origin", originSettings), ("replica", null));
        await using var origin = clusters[0];
        await using var replica = clusters[1];
        await origin.ExecuteAsync(Items);
        await replica.ExecuteAsync(Items);
        if (originSetup is not null) await origin.ExecuteAsync(originSetup);
        using var kit = new ApplyKit(output);
        var config = kit.Config([("origin", origin.ConnInfo), ("replica", replica.ConnInfo)], OneSubscription);

        var problems = await kit.ProblemsAsync(config);

        await ApplyKit.AssertUntouchedAsync(origin);
        await ApplyKit.AssertUntouchedAsync(replica);
        return problems;
    }

    [Fact]
    public async Task Wal_level_replica_on_the_origin_is_refused()
    {
        var problems = await RefusedAsync(new() { ["wal_level"] = "replica" });
        ApplyKit.AssertProblems(problems,
            "node origin: wal_level is 'replica' but logical decoding needs 'logical'; run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL");
    }

    [Fact]
    public async Task Too_few_replication_slots_counting_the_slots_already_there_is_refused()
    {
        var problems = await RefusedAsync(new() { ["max_replication_slots"] = "1" }, "SELECT pg_create_physical_replication_slot('standby_1')");
        ApplyKit.AssertProblems(problems,
            "node origin: max_replication_slots is 1 but 1 slot(s) already exist and navette needs 1 more; set max_replication_slots to at least 2 (ALTER SYSTEM, then restart)");
    }

    [Fact]
    public async Task Too_few_wal_senders_is_refused()
    {
        var problems = await RefusedAsync(new() { ["max_wal_senders"] = "1" });
        ApplyKit.AssertProblems(problems,
            "node origin: max_wal_senders is 1 but navette needs 2 (1 subscription(s) streaming plus one while a copy starts); set max_wal_senders to at least 2 (ALTER SYSTEM, then restart)");
    }

    [Fact]
    public async Task A_target_that_cannot_track_enough_replication_origins_is_refused()
    {
        var clusters = await ApplyKit.StartAsync(("origin", null), ("replica", new() { ["max_replication_slots"] = "0" }));
        await using var origin = clusters[0];
        await using var replica = clusters[1];
        await origin.ExecuteAsync(Items);
        await replica.ExecuteAsync(Items);
        using var kit = new ApplyKit(output);
        var config = kit.Config([("origin", origin.ConnInfo), ("replica", replica.ConnInfo)], OneSubscription);

        ApplyKit.AssertProblems(await kit.ProblemsAsync(config),
            "node replica: max_replication_slots is 0, which also limits the replication origins a node can track, but it receives 1 subscription(s); set max_replication_slots to at least 1 (ALTER SYSTEM, then restart)");
        await ApplyKit.AssertUntouchedAsync(origin);
        await ApplyKit.AssertUntouchedAsync(replica);
    }
}
