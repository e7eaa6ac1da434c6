using Navette.Ddl;
using Navette.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Ddl;

/// <summary>Schema changes replayed in the stream: navette execute scripts and DDL captured by ddl: auto, under writes.</summary>
public sealed class SchemaChangeTests(ITestOutputHelper output)
{
    private const string Tables = """
        CREATE TABLE public.items (id int PRIMARY KEY, name text);
        CREATE SCHEMA other;
        """;

    private async Task<ReplicationHarness> OneWayAsync(string ddl)
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Tables);
        await h["replica"].ExecuteAsync("DROP SCHEMA other");
        await h["origin"].ExecuteAsync("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g");
        h.WriteConfig($$"""
            sets:
              shop: { tables: ["public.*"], ddl: {{ddl}} }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        return h;
    }

    /// <summary>Inserts rows naming only the columns every version of the table has, until stopped.</summary>
    private static async Task<int> WriteAsync(ReplicationHarness h, int first, CancellationToken ct)
    {
        var n = first;
        while (!ct.IsCancellationRequested)
        {
            await h["origin"].ExecuteAsync($"INSERT INTO items (id, name) VALUES ({n}, 'w{n}'); UPDATE items SET name = name || '.' WHERE id = {n % 1000 + 1}");
            n++;
            await Task.Delay(3);
        }
        return n - first;
    }

    /// <summary>The table's columns in order, with type and default.</summary>
    private static async Task<string?> ColumnsAsync(Navette.Cli.Demo.LocalCluster node, string table) =>
        await node.ScalarAsync<string>($"SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum) " +
                                       $"FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum " +
                                       $"WHERE a.attrelid = '{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped");

    private string Script(string sql)
    {
        var path = Path.Combine(Path.GetTempPath(), $"navette-script-{Guid.NewGuid():N}.sql");
        File.WriteAllText(path, sql);
        return path;
    }

    [Fact]
    public async Task Execute_runs_the_script_on_every_replica_at_the_same_point_of_the_stream()
    {
        await using var h = await OneWayAsync("execute");
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteAsync(h, 10_001, stop.Token));
        await Task.Delay(500);
        var script = Script("""
            ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT 'none';
            -- the script's own rows: made again on the replica, not applied twice
            UPDATE items SET note = 'by script ' || id WHERE id <= 50;
            INSERT INTO items (id, name, note) VALUES (-1, 'from the script', 'script');
            CREATE INDEX items_note ON items (note);
            COMMENT ON COLUMN items.note IS 'added by navette execute';
            """);
        var run = await new ScriptExecutor(h.Config, h.Logs.CreateLogger("execute")).RunAsync("shop", script, null, CancellationToken.None);
        Assert.Equal("origin", run.Node);
        // Rows after the script use the new column.
        for (var i = 0; i < 20; i++)
            await h["origin"].ExecuteAsync($"INSERT INTO items (id, name, note) VALUES ({-100 - i}, 'after', 'after {i}')");
        await Task.Delay(500);
        await stop.CancelAsync();
        var written = await writer;
        await h.WaitCaughtUpAsync();

        Assert.True(written > 20, $"only {written} rows written during the test");
        Assert.Equal(await ColumnsAsync(h["origin"], "items"), await ColumnsAsync(h["replica"], "items"));
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "items", minRows: 1000 + written);
        Assert.Equal("added by navette execute", await h["replica"].ScalarAsync<string>("SELECT col_description('items'::regclass, 3)"));
        Assert.True(await h["replica"].ScalarAsync<bool>("SELECT to_regclass('public.items_note') IS NOT NULL"));
        Assert.Equal(1, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM items WHERE id = -1"));
    }

    [Fact]
    public async Task A_script_failing_on_the_replica_stops_it_there_and_it_resumes_once_fixed()
    {
        await using var h = await OneWayAsync("execute");
        // The replica already has a column of that name: the script cannot run there.
        await h["replica"].ExecuteAsync("ALTER TABLE items ADD COLUMN code int");
        var script = Script("ALTER TABLE items ADD COLUMN code int;");
        var run = await new ScriptExecutor(h.Config, h.Logs.CreateLogger("execute")).RunAsync("shop", script, null, CancellationToken.None);
        await h["origin"].ExecuteAsync("INSERT INTO items VALUES (5001, 'after the script', 7)");

        var error = await Eventually.ValueAsync(() => NodeQueries.ErrorAsync(h["replica"], "to_replica"), e => e is not null && e.Contains("schema change"),
            TimeSpan.FromSeconds(60), "the subscription to stop on the script");
        output.WriteLine(error);
        Assert.Contains("already exists", error);
        Assert.Contains("ADD COLUMN code", error);
        Assert.Contains($"navette skip-ddl --subscription to_replica --id {run.Id}", error);
        await Task.Delay(1000);
        Assert.Equal(0, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM items WHERE id = 5001"));

        // Fixed on the replica: the subscription runs the script on its next attempt, then the row after it.
        await h["replica"].ExecuteAsync("ALTER TABLE items DROP COLUMN code");
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "items", minRows: 1001);
        Assert.Equal(7, await h["replica"].ScalarAsync<int>("SELECT code FROM items WHERE id = 5001"));
    }

    [Fact]
    public async Task Skip_ddl_passes_over_a_change_the_replica_cannot_take()
    {
        await using var h = await OneWayAsync("execute");
        await h["replica"].ExecuteAsync("CREATE INDEX items_name ON items (name)");
        var run = await new ScriptExecutor(h.Config, h.Logs.CreateLogger("execute")).RunAsync("shop", Script("CREATE INDEX items_name ON items (name);"), null,
            CancellationToken.None);
        await h["origin"].ExecuteAsync("INSERT INTO items VALUES (6001, 'after the index')");
        await Eventually.ValueAsync(() => NodeQueries.ErrorAsync(h["replica"], "to_replica"), e => e is not null && e.Contains($"--id {run.Id}"),
            TimeSpan.FromSeconds(60), "the subscription to stop on the script");

        await DdlSkipper.SkipAsync(h.Config, "to_replica", run.Id, CancellationToken.None);
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "items", minRows: 1001);
    }

    [Fact]
    public async Task Ddl_auto_replays_what_psql_runs_on_the_origin_in_order_with_the_rows()
    {
        await using var h = await OneWayAsync("auto");
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() => WriteAsync(h, 20_001, stop.Token));
        var o = h["origin"];
        await o.ExecuteAsync("ALTER TABLE items ADD COLUMN price numeric(10,2)");
        await o.ExecuteAsync("INSERT INTO items (id, name, price) VALUES (-1, 'priced', 9.99)");
        await o.ExecuteAsync("CREATE TYPE public.mood AS ENUM ('happy', 'sad')");
        // DDL and rows in one transaction: the rows after the command use the new column.
        await o.ExecuteAsync("BEGIN; ALTER TABLE items ADD COLUMN feeling public.mood; INSERT INTO items (id, name, feeling) VALUES (-2, 'moody', 'sad'); COMMIT");
        await o.ExecuteAsync("CREATE INDEX items_price ON items (price)");
        await o.ExecuteAsync("COMMENT ON TABLE items IS 'replicated with ddl: auto'");
        await o.ExecuteAsync("ALTER TABLE items ALTER COLUMN name SET DEFAULT 'unnamed'");
        await o.ExecuteAsync("ALTER TABLE items ALTER COLUMN name TYPE varchar(200)");
        await o.ExecuteAsync("ALTER TABLE items DROP COLUMN price");
        await o.ExecuteAsync("INSERT INTO items (id) VALUES (-3)");
        // Outside the set (the replica has no schema other): not replayed, nothing stops.
        await o.ExecuteAsync("CREATE TABLE other.scratch (id int)");
        await o.ExecuteAsync("CREATE TABLE public.fresh (id int PRIMARY KEY, v text)");
        await o.ExecuteAsync("DROP TABLE public.fresh");
        // A new table matching the set's pattern is created on the replica and replicated from its first row.
        await o.ExecuteAsync("CREATE TABLE public.joined (id int PRIMARY KEY, v text)");
        await o.ExecuteAsync("INSERT INTO joined SELECT g, 'row ' || g FROM generate_series(1, 100) g");
        await o.ExecuteAsync("BEGIN; CREATE TABLE public.joined_in_one_go (id int PRIMARY KEY); INSERT INTO joined_in_one_go VALUES (1), (2); COMMIT");
        await o.ExecuteAsync("UPDATE joined SET v = 'changed' WHERE id <= 10; DELETE FROM joined WHERE id > 90");
        await Task.Delay(300);
        await stop.CancelAsync();
        var written = await writer;
        await h.WaitCaughtUpAsync();

        Assert.Null(await NodeQueries.ErrorAsync(h["replica"], "to_replica"));
        Assert.Equal(await ColumnsAsync(o, "items"), await ColumnsAsync(h["replica"], "items"));
        await TableCompare.AssertIdenticalAsync(o, h["replica"], "items", minRows: 1000 + written);
        await TableCompare.AssertIdenticalAsync(o, h["replica"], "joined", minRows: 90);
        await TableCompare.AssertIdenticalAsync(o, h["replica"], "joined_in_one_go", minRows: 2);
        var r = h["replica"];
        Assert.Equal("unnamed", await r.ScalarAsync<string>("SELECT name FROM items WHERE id = -3"));
        Assert.Equal("replicated with ddl: auto", await r.ScalarAsync<string>("SELECT obj_description('items'::regclass, 'pg_class')"));
        Assert.False(await r.ScalarAsync<bool>("SELECT to_regclass('public.items_price') IS NOT NULL"), "the index went with the dropped column");
        Assert.True(await r.ScalarAsync<bool>("SELECT to_regtype('public.mood') IS NOT NULL"));
        Assert.False(await r.ScalarAsync<bool>("SELECT to_regclass('public.fresh') IS NOT NULL"), "created then dropped");
        Assert.False(await r.ScalarAsync<bool>("SELECT to_regnamespace('other') IS NOT NULL"));
    }

    [Fact]
    public async Task In_a_mesh_a_script_runs_once_on_every_node()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "nice");
        await h.OnAllAsync("CREATE TABLE public.orders (id int PRIMARY KEY, total int)");
        await h["paris"].ExecuteAsync("INSERT INTO orders SELECT g, g FROM generate_series(1, 300) g");
        h.WriteConfig("""
            sets:
              shop:
                tables: [public.orders]
                mesh: [paris, lyon, nice]
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        var run = await new ScriptExecutor(h.Config, h.Logs.CreateLogger("execute")).RunAsync("shop",
            Script("ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'; CREATE TABLE public.audit (id serial PRIMARY KEY, at timestamptz);"), "lyon",
            CancellationToken.None);
        Assert.Equal("lyon", run.Node);
        // Each node writes rows using the new column once it has it.
        foreach (var (node, id) in new[] { ("lyon", 1001), ("paris", 1002), ("nice", 1003) })
        {
            await Eventually.TrueAsync(async () => await h[node].ScalarAsync<bool>("SELECT to_regclass('public.audit') IS NOT NULL"),
                TimeSpan.FromSeconds(60), $"the script on {node}");
            await h[node].ExecuteAsync($"INSERT INTO orders VALUES ({id}, 1, 'from {node}')");
        }
        await h.WaitCaughtUpAsync();
        foreach (var node in new[] { "lyon", "nice" })
            await TableCompare.AssertIdenticalAsync(h["paris"], h[node], "orders", minRows: 303);
        foreach (var node in new[] { "paris", "lyon", "nice" })
        {
            Assert.Equal(1, await h[node].ScalarAsync<long>("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'status'"));
            // Once: the nodes that replayed it did not send it on (their copy is tagged with lyon's origin).
            Assert.Equal(1, await h[node].ScalarAsync<long>("SELECT count(*) FROM navette.ddl WHERE kind = 'execute'"));
        }
    }

    [Fact]
    public async Task Sequences_follow_the_origin_at_navette_wait_and_while_streaming()
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await using var _ = h;
        await h.OnAllAsync("""
            CREATE TABLE public.orders (id serial PRIMARY KEY, total int);
            CREATE TABLE public.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text);
            CREATE SEQUENCE public.invoice_no START 1000;
            CREATE SEQUENCE public.countdown INCREMENT -1 START -1 MAXVALUE -1 MINVALUE -1000000;
            CREATE SEQUENCE public.unrelated;
            """);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.orders, public.events, public.invoice_no, public.countdown] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        var o = h["origin"];
        var r = h["replica"];
        // A burst of nextval: rows, and values drawn without a row (rolled back, or used elsewhere).
        await o.ExecuteAsync("INSERT INTO orders (total) SELECT g FROM generate_series(1, 500) g; INSERT INTO events (what) SELECT 'e' FROM generate_series(1, 300)");
        await o.ExecuteAsync("SELECT nextval('orders_id_seq') FROM generate_series(1, 250); SELECT nextval('invoice_no') FROM generate_series(1, 77); " +
                             "SELECT nextval('countdown') FROM generate_series(1, 40); SELECT nextval('unrelated') FROM generate_series(1, 9)");
        await o.ExecuteAsync("BEGIN; INSERT INTO events (what) SELECT 'rolled back' FROM generate_series(1, 20); ROLLBACK");
        await h.WaitCaughtUpAsync();

        foreach (var seq in new[] { "orders_id_seq", "events_id_seq", "invoice_no", "countdown" })
            Assert.Equal(await o.ScalarAsync<long>($"SELECT last_value FROM {seq}"), await r.ScalarAsync<long>($"SELECT last_value FROM {seq}"));
        Assert.Equal(750, await r.ScalarAsync<long>("SELECT last_value FROM orders_id_seq"));
        Assert.Equal(-40, await r.ScalarAsync<long>("SELECT last_value FROM countdown"));
        Assert.False(await r.ScalarAsync<bool>("SELECT is_called FROM unrelated"), "a sequence outside the set is left alone");
        // The next value on the replica (after a switchover, say) does not collide with one the origin used.
        Assert.Equal(751, await r.ScalarAsync<long>("SELECT nextval('orders_id_seq')"));

        // Without a wait: the daemon sends them on its own within its interval.
        await o.ExecuteAsync("SELECT nextval('invoice_no') FROM generate_series(1, 5)");
        await Eventually.TrueAsync(async () => await r.ScalarAsync<long>("SELECT last_value FROM invoice_no") == await o.ScalarAsync<long>("SELECT last_value FROM invoice_no"),
            TimeSpan.FromSeconds(40), "the replica's invoice_no to follow");
    }
}
