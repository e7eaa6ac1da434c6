using Navette.Daemon;
using Navette.Markers;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>Two nodes that are two databases of one cluster: replication origins are the cluster's, not the database's.</summary>
public sealed class SameClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Two_databases_of_one_cluster_replicate_and_apply_keeps_the_origin()
    {
        await using var cluster = await TestClusters.StartAsync("both");
        await cluster.ExecuteAsync("CREATE DATABASE copy_db");
        var copy = cluster.ConnInfoFor("copy_db");
        await cluster.ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 500) g");
        await using (var conn = new Npgsql.NpgsqlConnection(cluster.ConnectionStringFor("copy_db")))
        {
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("CREATE TABLE public.items (id int PRIMARY KEY, v text)", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        using var kit = new ApplyKit(output);
        var config = kit.Config([("main", cluster.ConnInfo), ("copy", copy)], """
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              main_to_copy: { from: main, to: copy, sets: [shop] }
            """);
        var actions = await kit.ApplyAsync(config);
        Assert.DoesNotContain(actions, a => a.Contains("replication origin navette_main_to_copy dropped"));
        using var stop = new CancellationTokenSource();
        var daemon = Task.Run(() => new ReplicationDaemon(config, kit.Logs).RunAsync(new DaemonOptions(), stop.Token));
        await cluster.ExecuteAsync("INSERT INTO items VALUES (501, 'after')");
        Assert.Empty(await new FenceWaiter(config).WaitAsync(TimeSpan.FromSeconds(90), null, CancellationToken.None));
        // A second apply (the daemon streaming) changes nothing, and above all does not drop the target's origin.
        Assert.Empty(await kit.ApplyAsync(config));
        await cluster.ExecuteAsync("INSERT INTO items VALUES (502, 'after the second apply')");
        Assert.Empty(await new FenceWaiter(config).WaitAsync(TimeSpan.FromSeconds(90), null, CancellationToken.None));
        await stop.CancelAsync();
        await daemon;
        await using var check = new Npgsql.NpgsqlConnection(cluster.ConnectionStringFor("copy_db"));
        await check.OpenAsync();
        await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM items", check);
        Assert.Equal(502L, await count.ExecuteScalarAsync());
    }
}
