using System.Globalization;
using Navette.Cli.Demo;
using Navette.Processes;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>Nodes apply cannot reach are reported by name, never with their password, together with every other problem.</summary>
public sealed class ConnectionPreconditionTests(ITestOutputHelper output)
{
    private const string OneSubscription = """
        sets:
          shop: { tables: [public.items] }
        subscriptions:
          origin_to_replica: { from: origin, to: replica, sets: [shop] }
        """;

    [Fact]
    public async Task An_unreachable_node_is_named_without_its_password()
    {
        await using var origin = (await ApplyKit.StartAsync(("origin", null)))[0];
        await origin.ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY)");
        var deadPort = PgProcesses.FindFreePort().ToString(CultureInfo.InvariantCulture);
        using var kit = new ApplyKit(output);
        var config = kit.Config([
            ("origin", origin.ConnInfo),
            ("replica", $"host=127.0.0.1 port={deadPort} dbname=postgres user=postgres password=Unreachable-S3cret connect_timeout=5")], OneSubscription);

        var e = await Assert.ThrowsAsync<NavetteException>(() => kit.ApplyAsync(config));

        Assert.DoesNotContain("Unreachable-S3cret", e.Message, StringComparison.Ordinal);
        ApplyKit.AssertProblems(ApplyKit.Problems(e),
            $"node replica (host=127.0.0.1 port={deadPort} dbname=postgres user=postgres password=******** connect_timeout=5): cannot connect: Failed to connect to 127.0.0.1:{deadPort}: Connection refused");
        await ApplyKit.AssertUntouchedAsync(origin);
    }

    [Fact]
    public async Task A_wrong_password_is_named_without_the_password_and_the_right_one_works()
    {
        var clusters = await ApplyKit.StartAsync(("origin", null), ("replica", null));
        await using var origin = clusters[0];
        await using var replica = clusters[1];
        await origin.ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY)");
        await replica.ExecuteAsync("""
            SET password_encryption = 'scram-sha-256';
            CREATE ROLE app LOGIN SUPERUSER PASSWORD 'Right-Pa55word';
            CREATE TABLE public.items (id int PRIMARY KEY);
            """);
        await ApplyKit.RequirePasswordsAsync(replica);
        var appConnInfo = replica.ConnInfo.Replace("user=postgres", "user=app", StringComparison.Ordinal);
        using var kit = new ApplyKit(output);
        var config = kit.Config([("origin", origin.ConnInfo), ("replica", appConnInfo + " password=Wrong-Pa55word")], OneSubscription);

        var e = await Assert.ThrowsAsync<NavetteException>(() => kit.ApplyAsync(config));

        Assert.DoesNotContain("Pa55word", e.Message, StringComparison.Ordinal);
        ApplyKit.AssertProblems(ApplyKit.Problems(e),
            $"node replica ({appConnInfo} password=********): cannot connect: 28P01 password authentication failed for user \"app\"");
        await ApplyKit.AssertUntouchedAsync(origin);
        await ApplyKit.AssertUntouchedAsync(replica);

        config = kit.Config([("origin", origin.ConnInfo), ("replica", appConnInfo + " password=Right-Pa55word")], OneSubscription);
        Assert.Contains("node replica: subscription origin_to_replica registered (initial copy on first run)", await kit.ApplyAsync(config));
    }

    [Fact]
    public async Task Problems_of_all_nodes_are_reported_at_once_and_no_node_is_changed()
    {
        var clusters = await ApplyKit.StartAsync(
            ("a", new() { ["wal_level"] = "replica" }),
            ("b", new() { ["max_replication_slots"] = "0" }),
            ("d", null));
        await using var a = clusters[0];
        await using var b = clusters[1];
        await using var d = clusters[2];
        await a.ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY, price numeric)");
        await b.ExecuteAsync("""
            CREATE TABLE public.items (id int PRIMARY KEY, price bigint);
            CREATE TABLE public.logs (id bigint, line text);
            """);
        await d.ExecuteAsync("CREATE TABLE public.logs (id bigint, line text)");
        var deadPort = PgProcesses.FindFreePort().ToString(CultureInfo.InvariantCulture);
        using var kit = new ApplyKit(output);
        var config = kit.Config([
            ("a", a.ConnInfo), ("b", b.ConnInfo),
            ("c", $"host=127.0.0.1 port={deadPort} dbname=postgres user=postgres connect_timeout=5"),
            ("d", d.ConnInfo)], """
            sets:
              shop: { tables: [public.items] }
              logs: { tables: [public.logs] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop] }
              d_to_b: { from: d, to: b, sets: [logs] }
              d_to_c: { from: d, to: c, sets: [logs] }
            """);

        var problems = await kit.ProblemsAsync(config);

        ApplyKit.AssertProblems(problems,
            $"node c (host=127.0.0.1 port={deadPort} dbname=postgres user=postgres connect_timeout=5): cannot connect: Failed to connect to 127.0.0.1:{deadPort}: Connection refused",
            "node a: wal_level is 'replica' but logical decoding needs 'logical'; run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL",
            "node b: max_replication_slots is 0, which also limits the replication origins a node can track, but it receives 2 subscription(s); set max_replication_slots to at least 2 (ALTER SYSTEM, then restart)",
            "subscription a_to_b: column price of public.items is numeric on a but bigint on b; make the types identical",
            "set logs: table public.logs on node d has no primary key or replica identity, so its UPDATEs and DELETEs cannot be replicated; add a primary key, or run ALTER TABLE \"public\".\"logs\" REPLICA IDENTITY FULL;");
        await ApplyKit.AssertUntouchedAsync(a);
        await ApplyKit.AssertUntouchedAsync(b);
        await ApplyKit.AssertUntouchedAsync(d);
    }
}
