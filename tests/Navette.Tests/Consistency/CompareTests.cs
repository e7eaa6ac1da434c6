using Microsoft.Extensions.Logging;
using Navette.Consistency;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Consistency;

/// <summary>navette compare on a replica damaged on purpose, and on healthy nodes, while the origin keeps writing.</summary>
public sealed class CompareTests(ITestOutputHelper output)
{
    private const string Tables = """
        CREATE TABLE public.items (id int PRIMARY KEY, name text, qty int, body text);
        CREATE TABLE public.lines (order_no text NOT NULL, line int NOT NULL, product uuid NOT NULL, price numeric(12,2), PRIMARY KEY (order_no, line));
        """;

    private async Task<ReplicationHarness> OneWayAsync()
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Tables);
        await h["origin"].ExecuteAsync("""
            INSERT INTO items SELECT g, 'item ' || g, g % 17, CASE WHEN g % 500 = 0 THEN repeat(md5(g::text), 400) END FROM generate_series(1, 30000) g;
            INSERT INTO lines SELECT 'ord-' || (g / 4), g % 4, md5(g::text)::uuid, (g % 1000) / 7.0 FROM generate_series(1, 8000) g;
            """);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items, public.lines] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        return h;
    }

    /// <summary>Writes to ids 40001.. and updates rows above 25000, away from the damaged ones.</summary>
    private static async Task WriteAwayAsync(ReplicationHarness h, CancellationToken ct)
    {
        var n = 40001;
        while (!ct.IsCancellationRequested)
        {
            await h["origin"].ExecuteAsync($"INSERT INTO items VALUES ({n}, 'new', 1, NULL); UPDATE items SET qty = qty + 1 WHERE id BETWEEN 25000 AND 25100; " +
                                           $"INSERT INTO lines VALUES ('new-{n}', 1, gen_random_uuid(), 1)");
            n++;
            await Task.Delay(5);
        }
    }

    private CompareRunner Runner(ReplicationHarness h, CompareOptions? options = null) =>
        new(h.Config, options ?? new CompareOptions { ChunkRows = 2000, DetailRows = 200 }, h.Logs.CreateLogger("compare"));

    [Fact]
    public async Task Damaged_rows_are_found_exactly_while_the_origin_keeps_writing()
    {
        await using var h = await OneWayAsync();
        // Damage the replica behind navette's back: deleted, extra and changed rows, a NULL, a large value, composite and text/uuid keys.
        await h["replica"].ExecuteAsync("""
            DELETE FROM items WHERE id IN (7, 1500, 1501, 29999);
            INSERT INTO items VALUES (-5, 'extra', 0, NULL), (35000, 'extra', 0, NULL);
            UPDATE items SET qty = qty + 1 WHERE id IN (10, 12000);
            UPDATE items SET name = NULL WHERE id = 13;
            UPDATE items SET body = body || 'x' WHERE id = 1000;
            DELETE FROM lines WHERE order_no = 'ord-100' AND line = 2;
            UPDATE lines SET product = '00000000-0000-0000-0000-000000000001' WHERE order_no = 'ord-1999' AND line = 1;
            INSERT INTO lines VALUES ('zzz', 1, gen_random_uuid(), 0);
            """);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteAwayAsync(h, stop.Token));

        var results = await Runner(h).RunAsync(new CompareSelection(), output.WriteLine, CancellationToken.None);
        await stop.CancelAsync();
        await writer;

        var items = results.Single(r => r.Subject.Table == "items");
        Assert.Null(items.Error);
        Assert.Equal(["1500", "1501", "29999", "7"], Keys(items, DifferenceKind.Missing));
        Assert.Equal(["-5", "35000"], Keys(items, DifferenceKind.Extra));
        Assert.Equal(["10", "1000", "12000", "13"], Keys(items, DifferenceKind.Different));
        var lines = results.Single(r => r.Subject.Table == "lines");
        Assert.Equal(["ord-100|2"], Keys(lines, DifferenceKind.Missing));
        Assert.Equal(["zzz|1"], Keys(lines, DifferenceKind.Extra));
        Assert.Equal(["ord-1999|1"], Keys(lines, DifferenceKind.Different));
    }

    [Fact]
    public async Task Healthy_nodes_under_load_never_show_a_false_difference()
    {
        await using var h = await OneWayAsync();
        using var stop = new CancellationTokenSource();
        // Updates all over the table while it is compared: every range keeps changing.
        var writer = Task.Run(async () =>
        {
            var random = new Random(5);
            while (!stop.IsCancellationRequested)
            {
                var id = random.Next(1, 30000);
                await h["origin"].ExecuteAsync($"UPDATE items SET qty = qty + 1 WHERE id IN ({id}, {id + 7}, {(id * 13) % 30000}); " +
                                               $"UPDATE lines SET price = price + 1 WHERE order_no = 'ord-{id % 2000}'");
            }
        });
        for (var round = 0; round < 3; round++)
        {
            var results = await Runner(h, new CompareOptions { ChunkRows = 1500, DetailRows = 100 }).RunAsync(new CompareSelection(), null, CancellationToken.None);
            foreach (var r in results)
            {
                output.WriteLine($"round {round}: {r.Subject.Name}: {r.OriginRows} rows, {r.Chunks} ranges, {r.Differences.Count} differences, {r.UnsettledRanges} unsettled");
                Assert.Null(r.Error);
                Assert.Empty(r.Differences);
                Assert.Equal(0, r.UnsettledRanges);
            }
        }
        await stop.CancelAsync();
        await writer;
    }

    private static List<string> Keys(TableComparison r, DifferenceKind kind) =>
        r.Differences.Where(d => d.Kind == kind).Select(d => string.Join("|", d.Key)).Order(StringComparer.Ordinal).ToList();
}
