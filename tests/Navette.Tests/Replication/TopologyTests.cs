using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>Fan-out, cascades (with and without forward) and many-to-one, each under writes while the daemon runs.</summary>
public sealed class TopologyTests(ITestOutputHelper output)
{
    private const string ItemsTable = "CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL, updated timestamptz);";

    /// <summary>Inserts ids [from, from+count), updates some, deletes some, in several transactions.</summary>
    private static async Task WriteItemsAsync(LocalCluster node, int from, int count, string table = "items")
    {
        for (var start = from; start < from + count; start += 100)
        {
            var end = Math.Min(start + 100, from + count) - 1;
            await node.ExecuteAsync($"""
                INSERT INTO {table} SELECT g, 'n' || g, g % 10, now() FROM generate_series({start}, {end}) g;
                UPDATE {table} SET qty = qty + 1, updated = now() WHERE id BETWEEN {start} AND {end} AND id % 3 = 0;
                DELETE FROM {table} WHERE id BETWEEN {start} AND {end} AND id % 10 = 9;
                """);
        }
    }

    [Fact]
    public async Task Origin_to_two_replicas()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "r1", "r2");
        await h.OnAllAsync(ItemsTable);
        await WriteItemsAsync(h["origin"], 1, 1000);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              to_r1: { from: origin, to: r1, sets: [shop] }
              to_r2: { from: origin, to: r2, sets: [shop], copy_workers: 1 }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await WriteItemsAsync(h["origin"], 1001, 2000);
        await h["origin"].ExecuteAsync("UPDATE items SET id = id + 100000 WHERE id BETWEEN 500 AND 520");
        await h.WaitCaughtUpAsync();

        await TableCompare.AssertIdenticalAsync(h["origin"], h["r1"], "public.items", 2500);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["r2"], "public.items", 2500);
    }

    [Fact]
    public Task Cascade_with_forward_carries_the_first_origin_rows_to_the_end() => CascadeAsync(forward: true);

    [Fact]
    public Task Cascade_without_forward_stops_the_first_origin_rows_in_the_middle() => CascadeAsync(forward: false);

    /// <summary>
    /// a -> b -> c. b -> c runs first; then a -> b is added, so its initial copy lands on b while b -> c streams:
    /// the copied rows, like the streamed ones, count as received on b, and reach c only with forward. Rows written
    /// on b itself always reach c.
    /// </summary>
    private async Task CascadeAsync(bool forward)
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync(ItemsTable);
        await WriteItemsAsync(h["a"], 1, 500);
        var sets = """
            sets:
              shop: { tables: [public.items] }
            subscriptions:

            """;
        var bToC = $"  b_to_c: {{ from: b, to: c, sets: [shop], forward: {(forward ? "true" : "false")} }}\n";
        h.WriteConfig(sets + bToC);
        await h.ApplyAsync();
        h.StartDaemon();
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["c"], "b_to_c") == "streaming", TimeSpan.FromSeconds(60), "b_to_c streaming");
        await h.StopDaemonAsync();

        h.WriteConfig(sets + "  a_to_b: { from: a, to: b, sets: [shop] }\n" + bToC);
        await h.ApplyAsync();
        h.StartDaemon();
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["b"], "a_to_b") == "streaming", TimeSpan.FromSeconds(60), "a_to_b streaming");
        await WriteItemsAsync(h["a"], 501, 1000);
        await WriteItemsAsync(h["b"], 100_001, 500);
        await h["a"].ExecuteAsync("UPDATE items SET qty = -1 WHERE id < 50 OR id > 1400");
        await h.WaitCaughtUpAsync();

        // b holds both.
        await TableCompare.AssertIdenticalAsync(h["a"], h["b"], "(SELECT * FROM public.items WHERE id <= 100000)", 1300);
        var bOwn = await TableCompare.RowsAsync(h["b"], "(SELECT * FROM public.items WHERE id > 100000)");
        Assert.Equal(450, bOwn.Count);
        if (forward)
        {
            await TableCompare.AssertIdenticalAsync(h["b"], h["c"], "public.items", 1800);
        }
        else
        {
            // c holds exactly what was written on b itself: neither a's copied rows nor a's streamed ones.
            var onC = await TableCompare.RowsAsync(h["c"], "public.items");
            Assert.Equal(bOwn, onC);
        }
    }

    [Fact]
    public async Task Two_origins_into_one_reporting_node()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "east", "west", "report");
        await h["east"].ExecuteAsync(ItemsTable.Replace("items", "east_items"));
        await h["west"].ExecuteAsync(ItemsTable.Replace("items", "west_items"));
        await h["report"].ExecuteAsync(ItemsTable.Replace("items", "east_items") + ItemsTable.Replace("items", "west_items"));
        await WriteItemsAsync(h["east"], 1, 700, "east_items");
        await WriteItemsAsync(h["west"], 1, 400, "west_items");
        h.WriteConfig("""
            sets:
              east: { tables: [public.east_items] }
              west: { tables: [public.west_items] }
            subscriptions:
              east_to_report: { from: east, to: report, sets: [east] }
              west_to_report: { from: west, to: report, sets: [west] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        var east = WriteItemsAsync(h["east"], 701, 1500, "east_items");
        var west = WriteItemsAsync(h["west"], 401, 1500, "west_items");
        await Task.WhenAll(east, west);
        await h.WaitCaughtUpAsync();

        await TableCompare.AssertIdenticalAsync(h["east"], h["report"], "public.east_items", 1800);
        await TableCompare.AssertIdenticalAsync(h["west"], h["report"], "public.west_items", 1500);
    }

    [Fact]
    public async Task A_diamond_where_fences_reach_a_node_twice_keeps_streaming()
    {
        // a -> c directly, and a -> b -> c with forward: every fence written on a reaches c by both paths.
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync(ItemsTable + "CREATE TABLE public.notes (id int PRIMARY KEY, body text);");
        h.WriteConfig("""
            sets:
              direct: { tables: [public.items] }
              relayed: { tables: [public.notes] }
            subscriptions:
              a_to_c: { from: a, to: c, sets: [direct] }
              a_to_b: { from: a, to: b, sets: [relayed] }
              b_to_c: { from: b, to: c, sets: [relayed], forward: true }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        for (var round = 0; round < 3; round++)
        {
            await WriteItemsAsync(h["a"], 1 + round * 300, 300);
            await h["a"].ExecuteAsync($"INSERT INTO notes SELECT g, 'note ' || g FROM generate_series({1 + round * 50}, {50 + round * 50}) g");
            await h.WaitCaughtUpAsync();
        }

        await TableCompare.AssertIdenticalAsync(h["a"], h["c"], "public.items", 500);
        await TableCompare.AssertIdenticalAsync(h["a"], h["c"], "public.notes", 150);
        await TableCompare.AssertIdenticalAsync(h["a"], h["b"], "public.notes", 150);
        foreach (var sub in new[] { "a_to_c", "b_to_c" })
        {
            var row = await NodeQueries.SubscriptionAsync(h["c"], sub);
            Assert.True(row is { State: "streaming", Error: null }, $"{sub} on c: {row}");
        }
    }
}
