using Microsoft.Extensions.Logging.Abstractions;
using Navette.Sync;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>Indexes dropped for the initial copy always come back, whatever interrupted it.</summary>
public sealed class DeferredIndexTests(ITestOutputHelper output)
{
    private const string Schema = """
        CREATE TABLE public.parent (id int PRIMARY KEY, label text);
        CREATE TABLE public.items (
            id     bigint PRIMARY KEY,
            code   text NOT NULL CONSTRAINT items_code_key UNIQUE,
            parent int REFERENCES public.parent(id),
            price  numeric,
            note   text);
        CREATE INDEX items_price ON public.items (price) WHERE price > 10;
        CREATE INDEX "Items Lower Note" ON public.items (lower(note));
        """;

    private const string Config = """
        sets:
          s: { tables: [public.parent, public.items] }
        subscriptions:
          origin_to_replica: { from: origin, to: replica, sets: [s] }
        """;

    private static async Task<List<string>> IndexesAsync(Navette.Cli.Demo.LocalCluster node)
    {
        var rows = new List<string>();
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname", conn);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add(r.GetString(0));
        return rows;
    }

    private static Task<long> PendingAsync(Navette.Cli.Demo.LocalCluster node) =>
        node.ScalarAsync<long>("SELECT count(*) FROM navette.copy_deferred_index").ContinueWith(t => t.Result);

    [Fact]
    public async Task After_a_copy_the_target_has_exactly_its_indexes_back_and_streams()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        await h["origin"].ExecuteAsync("""
            INSERT INTO public.parent SELECT g, 'p' || g FROM generate_series(1, 10) g;
            INSERT INTO public.items SELECT g, 'c' || g, 1 + g % 10, g % 50, 'Note ' || g FROM generate_series(1, 20000) g;
            """);
        var before = await IndexesAsync(h["replica"]);
        h.WriteConfig(Config);
        await h.ApplyAsync();
        h.StartDaemon();
        await h["origin"].ExecuteAsync("UPDATE public.items SET price = price + 1 WHERE id <= 100; DELETE FROM public.items WHERE id > 19900");
        await h.WaitCaughtUpAsync();

        Assert.Equal(before, await IndexesAsync(h["replica"]));
        Assert.Equal(0, await PendingAsync(h["replica"]));
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", minRows: 19_900);
    }

    [Fact]
    public async Task A_copy_interrupted_after_dropping_indexes_rebuilds_them_from_the_catalog()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        await h["origin"].ExecuteAsync("INSERT INTO public.items SELECT g, 'c' || g, NULL, g, 'n' FROM generate_series(1, 1000) g");
        var before = await IndexesAsync(h["replica"]);
        h.WriteConfig(Config);
        await h.ApplyAsync();

        // What a daemon killed right after dropping the indexes leaves behind.
        await using (var conn = new NpgsqlConnection(h["replica"].ConnectionString))
        {
            await conn.OpenAsync();
            var items = new CopyTable("public", "items", ["id", "code", "parent", "price", "note"], Binary: true, Partitioned: false, SizeBytes: 0);
            await new DeferredIndexes("origin_to_replica", h["replica"].ConnectionString, NullLogger.Instance).DeferAsync(conn, [items], CancellationToken.None);
        }
        Assert.NotEqual(before, await IndexesAsync(h["replica"]));
        Assert.Equal(4, await PendingAsync(h["replica"]));

        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        Assert.Equal(before, await IndexesAsync(h["replica"]));
        Assert.Equal(0, await PendingAsync(h["replica"]));
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", minRows: 1000);
    }

    [Fact]
    public async Task Removing_a_subscription_whose_copy_was_interrupted_puts_the_indexes_back()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        var before = await IndexesAsync(h["replica"]);
        h.WriteConfig(Config);
        await h.ApplyAsync();
        await using (var conn = new NpgsqlConnection(h["replica"].ConnectionString))
        {
            await conn.OpenAsync();
            var items = new CopyTable("public", "items", ["id", "code", "parent", "price", "note"], Binary: true, Partitioned: false, SizeBytes: 0);
            await new DeferredIndexes("origin_to_replica", h["replica"].ConnectionString, NullLogger.Instance).DeferAsync(conn, [items], CancellationToken.None);
        }

        h.WriteConfig("sets:\n  s: { tables: [public.parent, public.items] }\n");
        var actions = await h.ApplyAsync();

        Assert.Contains("node replica: subscription origin_to_replica unregistered (4 index(es) its interrupted copy had deferred rebuilt)", actions);
        Assert.Equal(before, await IndexesAsync(h["replica"]));
        Assert.Equal(0, await PendingAsync(h["replica"]));
    }

    [Fact]
    public async Task An_index_something_depends_on_is_kept_during_the_copy()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        // The view groups by the primary key alone, so it depends on items_pkey: dropping that would fail.
        await h["replica"].ExecuteAsync("CREATE VIEW public.items_by_id AS SELECT id, code, count(*) AS n FROM public.items GROUP BY id");
        await h["origin"].ExecuteAsync("INSERT INTO public.items SELECT g, 'c' || g, NULL, g, 'n' FROM generate_series(1, 2000) g");
        var before = await IndexesAsync(h["replica"]);
        h.WriteConfig(Config);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal(before, await IndexesAsync(h["replica"]));
        Assert.Equal(0, await PendingAsync(h["replica"]));
        Assert.Equal(2000L, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM public.items_by_id"));
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", minRows: 2000);
    }
}
