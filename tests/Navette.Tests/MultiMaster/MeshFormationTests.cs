using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.MultiMaster;

/// <summary>A mesh forming from a seed that holds data, every member writing, every member ending identical.</summary>
public sealed class MeshFormationTests(ITestOutputHelper output)
{
    internal const string Items = "CREATE TABLE public.items (id int PRIMARY KEY, owner text NOT NULL, qty int NOT NULL, note text);";

    [Fact]
    public async Task Three_nodes_copy_from_the_seed_then_each_one_writes_reach_the_others()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "nice");
        await h.OnAllAsync(Items);
        await h["paris"].ExecuteAsync("INSERT INTO items SELECT g, 'seed', g % 7, 'before' FROM generate_series(1, 500) g");
        h.WriteConfig("""
            sets:
              shop:
                tables: [public.items]
                mesh: [paris, lyon, nice]
            """);
        Assert.Equal(6, h.Config.Subscriptions.Count);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        // Each node writes its own keys, and updates rows the seed had.
        var offset = 1000;
        foreach (var node in new[] { "paris", "lyon", "nice" })
        {
            await h[node].ExecuteAsync($"INSERT INTO items SELECT g, '{node}', 1, NULL FROM generate_series({offset}, {offset + 199}) g");
            await h[node].ExecuteAsync($"UPDATE items SET qty = qty + 10, note = '{node}' WHERE id BETWEEN {offset / 10} AND {offset / 10 + 20}");
            await h[node].ExecuteAsync($"DELETE FROM items WHERE id BETWEEN {offset + 190} AND {offset + 199}");
            offset += 1000;
        }
        await h.WaitCaughtUpAsync();

        await TableCompare.AssertIdenticalAsync(h["paris"], h["lyon"], "public.items", 1000);
        await TableCompare.AssertIdenticalAsync(h["paris"], h["nice"], "public.items", 1000);
        Assert.Equal(500 + 3 * 190, await h["nice"].ScalarAsync<long>("SELECT count(*) FROM items"));
        // Changes applied by the mesh are never sent on: a node's own inserts never come back as insert_exists, and
        // the only conflicts are the updates of rows another node wrote last (each decided for the later change).
        foreach (var (name, node) in h.Nodes)
        {
            Assert.Equal(0, await node.ScalarAsync<long>("SELECT count(*) FROM navette.conflict_log WHERE conflict_type <> 'update_update' OR outcome <> 'applied_incoming'"));
            Assert.Equal(0, await node.ScalarAsync<long>($"SELECT count(*) FROM navette.conflict_log WHERE remote_origin = '{name}' OR NOT ((key->>'id')::int BETWEEN 100 AND 320)"));
        }
    }
}
