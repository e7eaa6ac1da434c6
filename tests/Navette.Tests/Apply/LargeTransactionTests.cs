using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>
/// Source transactions larger than max_transaction_memory go through a spill file: they must arrive whole, in one target
/// transaction, with every kind of change (and unchanged TOASTed values) intact, and a refused one must stop exactly there.
/// </summary>
public sealed class LargeTransactionTests(ITestOutputHelper output)
{
    private const string Schema = """
        CREATE TABLE big (id integer PRIMARY KEY, v text, n integer, doc text);
        CREATE TABLE side (id integer PRIMARY KEY, note text);
        """;

    private static async Task<ReplicationHarness> StartAsync(ITestOutputHelper output, string? replicaOnlySql = null)
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        if (replicaOnlySql is not null) await h["replica"].ExecuteAsync(replicaOnlySql);
        // A few rows with values large enough to be TOASTed, so that the big UPDATE sends them as "unchanged".
        await h["origin"].ExecuteAsync("INSERT INTO big SELECT -g, 'toasted', 0, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 400) i) FROM generate_series(1, 20) g");
        h.WriteConfig("""
            sets:
              s: { tables: [public.big, public.side] }
            subscriptions:
              o_to_r: { from: origin, to: replica, sets: [s], max_transaction_memory: 1MB }
            """);
        await h.ApplyAsync();
        h.StartDaemon(retryBackoff: (TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1)));
        await h.WaitCaughtUpAsync();
        return h;
    }

    private const string BigTransaction = """
        BEGIN;
        INSERT INTO big SELECT g, 'héllo ' || g, g, CASE WHEN g % 1000 = 0 THEN NULL ELSE md5(g::text) END FROM generate_series(1, 60000) g;
        INSERT INTO side SELECT g, 'side ' || g FROM generate_series(1, 10) g;
        UPDATE big SET n = n * 2 WHERE id % 3 = 0;
        UPDATE big SET n = -1 WHERE id < 0;
        DELETE FROM big WHERE id % 7 = 0;
        UPDATE big SET id = id + 100000 WHERE id % 11 = 0;
        DELETE FROM side WHERE id = 5;
        COMMIT;
        """;

    [Fact]
    public async Task A_transaction_above_max_transaction_memory_is_spilled_and_applied_whole()
    {
        await using var h = await StartAsync(output);
        var origin = h["origin"];
        var replica = h["replica"];

        // The replica must show either none or all of the big transaction: it is one target transaction however it was read.
        using var stopWatching = new CancellationTokenSource();
        var seen = new HashSet<long>();
        var watcher = Task.Run(async () =>
        {
            while (!stopWatching.IsCancellationRequested)
            {
                seen.Add(await replica.ScalarAsync<long>("SELECT count(*) FROM big"));
                await Task.Delay(20);
            }
        });
        await origin.ExecuteAsync(BigTransaction);
        await origin.ExecuteAsync("INSERT INTO side VALUES (100, 'after')");
        await h.WaitCaughtUpAsync(180);
        await stopWatching.CancelAsync();
        await watcher;

        await TableCompare.AssertIdenticalAsync(origin, replica, "big", 50_000);
        await TableCompare.AssertIdenticalAsync(origin, replica, "side", 10);
        var final = await replica.ScalarAsync<long>("SELECT count(*) FROM big");
        Assert.Subset(new HashSet<long> { 20, final }, seen);
        Assert.Contains(h.Messages, m => m.Contains("went to a spill file", StringComparison.Ordinal));
        Assert.Contains(h.Messages, m => m.Contains("from its spill file", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_refused_spilled_transaction_stops_the_subscription_before_it_and_resumes_once_fixed()
    {
        // Only the replica refuses one row of the big transaction.
        await using var h = await StartAsync(output, "ALTER TABLE big ADD CONSTRAINT replica_only CHECK (n <> 24690)");
        var origin = h["origin"];
        var replica = h["replica"];
        await origin.ExecuteAsync("INSERT INTO side VALUES (200, 'before')");
        await origin.ExecuteAsync(BigTransaction);
        await origin.ExecuteAsync("INSERT INTO side VALUES (201, 'after')");

        var error = await Eventually.ValueAsync(() => NodeQueries.ErrorAsync(replica, "o_to_r"), e => e is not null, TimeSpan.FromSeconds(120), "the refusal is reported");
        output.WriteLine(error);
        Assert.Contains("public.big", error!);
        Assert.Contains("replica_only", error!);
        // Everything before the refused transaction is there, nothing of it or after it.
        Assert.Equal(1L, await replica.ScalarAsync<long>("SELECT count(*) FROM side WHERE id = 200"));
        Assert.Equal(20L, await replica.ScalarAsync<long>("SELECT count(*) FROM big"));
        Assert.Equal(0L, await replica.ScalarAsync<long>("SELECT count(*) FROM side WHERE id <> 200"));

        await replica.ExecuteAsync("ALTER TABLE big DROP CONSTRAINT replica_only");
        await h.WaitCaughtUpAsync(180);
        await TableCompare.AssertIdenticalAsync(origin, replica, "big", 50_000);
        await TableCompare.AssertIdenticalAsync(origin, replica, "side", 11);
    }
}
