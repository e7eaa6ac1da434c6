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
        CREATE TABLE public.codes (code uuid PRIMARY KEY, label text);
        CREATE TABLE public.rates (rate numeric PRIMARY KEY, note text);
        """;

    private async Task<ReplicationHarness> OneWayAsync()
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Tables);
        await h["origin"].ExecuteAsync("""
            INSERT INTO items SELECT g, 'item ' || g, g % 17, CASE WHEN g % 500 = 0 THEN repeat(md5(g::text), 400) END FROM generate_series(1, 30000) g;
            INSERT INTO lines SELECT 'ord-' || (g / 4), g % 4, md5(g::text)::uuid, (g % 1000) / 7.0 FROM generate_series(1, 8000) g;
            INSERT INTO codes SELECT md5('c' || g)::uuid, 'code ' || g FROM generate_series(1, 3000) g;
            INSERT INTO rates SELECT g / 1000.0, 'rate ' || g FROM generate_series(1, 3000) g;
            -- a value large and random enough to be stored out of line
            UPDATE items SET body = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 3000)) WHERE id = 777;
            """);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items, public.lines, public.codes, public.rates] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        return h;
    }

    /// <summary>Writes to ids 40001.. and updates rows 25001..25099, away from the damaged ones.</summary>
    private static async Task WriteAwayAsync(ReplicationHarness h, CancellationToken ct)
    {
        var n = 40001;
        while (!ct.IsCancellationRequested)
        {
            await h["origin"].ExecuteAsync($"INSERT INTO items VALUES ({n}, 'new', 1, NULL); UPDATE items SET qty = qty + 1 WHERE id BETWEEN 25001 AND 25099; " +
                                           $"INSERT INTO lines VALUES ('new-{n}', 1, gen_random_uuid(), 1)");
            n++;
            await Task.Delay(5);
        }
    }

    private CompareRunner Runner(ReplicationHarness h, CompareOptions? options = null) =>
        new(h.Config, options ?? new CompareOptions { DetailRows = 200, BucketsPerRange = 10, DetailMaxRows = 1000 }, h.Logs.CreateLogger("compare"));

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
            DELETE FROM codes WHERE code = md5('c17')::uuid;
            UPDATE codes SET label = NULL WHERE code = md5('c18')::uuid;
            INSERT INTO rates VALUES (0.0005, 'extra'), (1e-20, 'tiny');
            UPDATE rates SET note = 'changed' WHERE rate = 2.5;
            UPDATE items SET body = substr(body, 2) WHERE id = 777;
            """);
        // Planned from the statistics: a table cut in buckets from its estimate, not compared as one range split later.
        await h["origin"].ExecuteAsync("ANALYZE");
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteAwayAsync(h, stop.Token));

        var results = await Runner(h).RunAsync(new CompareSelection(), output.WriteLine, CancellationToken.None);
        await stop.CancelAsync();
        await writer;

        var items = results.Single(r => r.Subject.Table == "items");
        Assert.Null(items.Error);
        Assert.InRange(items.OriginRows, 29_000, 31_000);
        Assert.True(items.Chunks >= 100, $"items was planned in {items.Chunks} bucket(s)");
        Assert.Equal(["1500", "1501", "29999", "7"], Keys(items, DifferenceKind.Missing));
        Assert.Equal(["-5", "35000"], Keys(items, DifferenceKind.Extra));
        Assert.Equal(["10", "1000", "12000", "13", "777"], Keys(items, DifferenceKind.Different));
        var lines = results.Single(r => r.Subject.Table == "lines");
        Assert.Equal(["ord-100|2"], Keys(lines, DifferenceKind.Missing));
        Assert.Equal(["zzz|1"], Keys(lines, DifferenceKind.Extra));
        Assert.Equal(["ord-1999|1"], Keys(lines, DifferenceKind.Different));
        var codes = results.Single(r => r.Subject.Table == "codes");
        Assert.Equal([(await h["origin"].ScalarAsync<string>("SELECT md5('c17')::uuid::text"))!], Keys(codes, DifferenceKind.Missing));
        Assert.Equal([(await h["origin"].ScalarAsync<string>("SELECT md5('c18')::uuid::text"))!], Keys(codes, DifferenceKind.Different));
        var rates = results.Single(r => r.Subject.Table == "rates");
        Assert.Equal(["0.0005", "0.00000000000000000001"], Keys(rates, DifferenceKind.Extra).OrderDescending());
        Assert.Equal([(await h["origin"].ScalarAsync<string>("SELECT (2500 / 1000.0)::text"))!], Keys(rates, DifferenceKind.Different));
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
            var results = await Runner(h, new CompareOptions { DetailRows = 100, BucketsPerRange = 15, DetailMaxRows = 500 }).RunAsync(new CompareSelection(), null, CancellationToken.None);
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

    [Fact]
    public async Task Repair_fixes_only_the_differing_rows_while_the_origin_keeps_writing()
    {
        await using var h = await OneWayAsync();
        await h["replica"].ExecuteAsync("""
            DELETE FROM items WHERE id BETWEEN 100 AND 149;
            INSERT INTO items VALUES (-1, 'extra', 0, NULL);
            UPDATE items SET body = 'damaged', name = NULL WHERE id % 1000 = 0;
            UPDATE lines SET price = -1 WHERE order_no = 'ord-7';
            """);
        var untouched = await h["replica"].ScalarAsync<string>("SELECT xmin::text FROM items WHERE id = 5001");
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteAwayAsync(h, stop.Token));

        var found = await Runner(h).RunAsync(new CompareSelection(), null, CancellationToken.None);
        foreach (var r in found)
            output.WriteLine($"{r.Subject.Name}: {r.Count(DifferenceKind.Missing)} missing, {r.Count(DifferenceKind.Extra)} extra, {r.Count(DifferenceKind.Different)} different, {r.UnsettledRanges} unsettled");
        var repairer = new Repairer(h.Logs.CreateLogger("repair"));
        var repaired = new List<TableRepair>();
        foreach (var r in found.Where(r => r.Differences.Count > 0))
            repaired.Add(await repairer.RepairAsync(r, TimeSpan.FromSeconds(60), CancellationToken.None));
        Assert.Equal(50 + 30, repaired.Single(r => r.Subject.Table == "items").Written);
        Assert.Equal(1, repaired.Single(r => r.Subject.Table == "items").Removed);
        Assert.Equal(4, repaired.Single(r => r.Subject.Table == "lines").Written);

        var after = await Runner(h).RunAsync(new CompareSelection(), null, CancellationToken.None);
        Assert.All(after, r => Assert.True(r.Identical, $"{r.Subject.Name}: {r.Differences.Count} differences"));
        await stop.CancelAsync();
        await writer;
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", 30000);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.lines", 8000);
        // Only the differing rows were written.
        Assert.Equal(untouched, await h["replica"].ScalarAsync<string>("SELECT xmin::text FROM items WHERE id = 5001"));
    }

    [Fact]
    public async Task Repair_to_sql_writes_statements_that_make_the_replica_identical()
    {
        await using var h = await OneWayAsync();
        await h["replica"].ExecuteAsync("DELETE FROM items WHERE id IN (3, 4); UPDATE items SET name = 'it''s \\ damaged' WHERE id = 9; INSERT INTO lines VALUES ('x''y', 1, gen_random_uuid(), 2)");
        var found = await Runner(h).RunAsync(new CompareSelection(), null, CancellationToken.None);
        var path = Path.Combine(TestClusters.RootDir, $"repair-{Guid.NewGuid():N}.sql");
        await using (var w = new StreamWriter(path))
            foreach (var r in found.Where(r => r.Differences.Count > 0))
                await Repairer.WriteSqlAsync(r, w, CancellationToken.None);
        var sql = await File.ReadAllTextAsync(path);
        output.WriteLine(sql);
        Assert.Equal(2, (await Runner(h).RunAsync(new CompareSelection(), null, CancellationToken.None)).Count(r => !r.Identical)); // nothing changed yet
        await h["replica"].ExecuteAsync(sql);
        Assert.All(await Runner(h).RunAsync(new CompareSelection(), null, CancellationToken.None), r => Assert.True(r.Identical));
    }

    [Fact]
    public async Task Resync_after_the_slot_was_lost_moves_only_the_changed_rows_then_streams_without_gap_or_duplicate()
    {
        await using var h = await OneWayAsync();
        await h.StopDaemonAsync();
        await h["origin"].ExecuteAsync("SELECT pg_drop_replication_slot('navette_to_replica')");
        // While the replica had no slot: changes it will never receive by the stream.
        await h["origin"].ExecuteAsync("""
            UPDATE items SET qty = -1 WHERE id BETWEEN 200 AND 299;
            DELETE FROM items WHERE id BETWEEN 300 AND 309;
            INSERT INTO items SELECT g, 'late', 0, NULL FROM generate_series(50001, 50040) g;
            DELETE FROM lines WHERE order_no = 'ord-5';
            """);
        var xmin = await h["replica"].ScalarAsync<string>("SELECT xmin::text FROM items WHERE id = 5001");

        var resync = new Resync(h.Config, new CompareOptions { DetailRows = 200, BucketsPerRange = 10, DetailMaxRows = 1000 }, h.Logs.CreateLogger("resync"));
        var report = await resync.RunAsync("to_replica", output.WriteLine, CancellationToken.None);
        var items = report.Tables.Single(t => t.Compared.Subject.Table == "items");
        Assert.Equal(100 + 40, items.Written);
        Assert.Equal(10, items.Removed);
        Assert.Equal(4, report.Tables.Single(t => t.Compared.Subject.Table == "lines").Removed);
        Assert.Equal(xmin, await h["replica"].ScalarAsync<string>("SELECT xmin::text FROM items WHERE id = 5001"));

        // Written after the new slot: arrives by the stream.
        await h["origin"].ExecuteAsync("UPDATE items SET name = 'after resync' WHERE id % 100 = 0; INSERT INTO items VALUES (60000, 'after', 1, NULL)");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", 30000);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.lines", 7000);
    }

    [Fact]
    public async Task Two_members_of_a_mesh_compare_while_every_member_writes()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "nice");
        await h.OnAllAsync("CREATE TABLE public.kv (id int PRIMARY KEY, val int NOT NULL, writer text NOT NULL, seq bigint NOT NULL);");
        await h["paris"].ExecuteAsync("INSERT INTO kv SELECT g, g, 'seed', 0 FROM generate_series(1, 20000) g");
        h.WriteConfig("""
            sets:
              shop:
                tables: [public.kv]
                mesh: [paris, lyon, nice]
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        // Damaged under an origin of its own, so that lyon does not send the damage on.
        await h["lyon"].ExecuteAsync("""
            SELECT pg_replication_origin_create('test_damage');
            SELECT pg_replication_origin_session_setup('test_damage');
            SET session_replication_role = replica;
            DELETE FROM kv WHERE id = 4242;
            UPDATE kv SET val = -1 WHERE id = 4343;
            """);
        await Task.Delay(1000);
        Assert.Equal(0, await h["lyon"].ScalarAsync<long>("SELECT count(*) FROM kv WHERE id = 4242"));
        Assert.Equal(1, await h["paris"].ScalarAsync<long>("SELECT count(*) FROM kv WHERE id = 4242"));
        using var stop = new CancellationTokenSource();
        // Every member writes keys above 20000 meanwhile.
        var writers = h.Nodes.Select((n, i) => Task.Run(async () =>
        {
            var id = 30000 + i * 100000;
            while (!stop.IsCancellationRequested)
                await n.Value.ExecuteAsync($"INSERT INTO kv VALUES ({id++}, 1, '{n.Key}', 0); UPDATE kv SET val = val + 1 WHERE id BETWEEN 20001 AND 20010");
        })).ToList();
        await Task.Delay(500);
        var results = await Runner(h).RunAsync(new CompareSelection(From: "paris", To: "lyon"), null, CancellationToken.None);
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        var kv = Assert.Single(results);
        output.WriteLine($"{kv.Differences.Count} differences ({string.Join(" ", kv.Differences.Take(10).Select(d => d.Kind + ":" + string.Join("|", d.Key)))}), {kv.UnsettledRanges} unsettled, error {kv.Error}");
        Assert.Equal("mesh_paris_lyon", kv.Subject.Subscription);
        Assert.Equal(["4242"], Keys(kv, DifferenceKind.Missing));
        Assert.Equal(["4343"], Keys(kv, DifferenceKind.Different));
        Assert.Empty(Keys(kv, DifferenceKind.Extra));
    }

    private static List<string> Keys(TableComparison r, DifferenceKind kind) =>
        r.Differences.Where(d => d.Kind == kind).Select(d => string.Join("|", d.Key)).Order(StringComparer.Ordinal).ToList();
}
