using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.MultiMaster;

/// <summary>Members that go away and come back, and members that join a mesh while the others keep writing.</summary>
public sealed class MeshMembershipTests(ITestOutputHelper output)
{
    private static async Task AssertAllIdenticalAsync(ReplicationHarness h, string table, int minRows)
    {
        var first = h.Nodes.First();
        foreach (var other in h.Nodes.Skip(1))
            await TableCompare.AssertIdenticalAsync(first.Value, other.Value, table, minRows);
    }

    [Fact]
    public async Task Four_node_mesh_with_a_member_down_for_a_while_converges_once_it_is_back()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "nice", "lille");
        await h.OnAllAsync(MeshWorkload.Table);
        h.WriteConfig("""
            sets:
              shop:
                tables: [public.kv]
                mesh: [paris, lyon, nice, lille]
            """);
        Assert.Equal(12, h.Config.Subscriptions.Count);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        await new MeshWorkload(h.Nodes, seed: 11, keys: 300).RunAsync(TimeSpan.FromSeconds(5));
        await h["lille"].StopAsync(ShutdownMode.Fast);
        var others = h.Nodes.Where(n => n.Key != "lille").ToDictionary(n => n.Key, n => n.Value);
        var whileDown = new MeshWorkload(others, seed: 12, keys: 300);
        await whileDown.RunAsync(TimeSpan.FromSeconds(8));
        output.WriteLine($"{whileDown.Transactions} transactions while lille was down");
        await h["lille"].StartAsync();
        await new MeshWorkload(h.Nodes, seed: 13, keys: 300).RunAsync(TimeSpan.FromSeconds(5));
        await h.WaitCaughtUpAsync(180);

        await AssertAllIdenticalAsync(h, "public.kv", 50);
    }

    [Fact]
    public async Task A_node_joins_a_running_mesh_with_a_copy_from_the_seed_while_the_others_write()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "nice", "lille");
        await h.OnAllAsync(MeshWorkload.Table);
        const string three = """
            sets:
              shop:
                tables: [public.kv]
                mesh: [paris, lyon, nice]
            """;
        h.WriteConfig(three);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        var members = h.Nodes.Where(n => n.Key != "lille").ToDictionary(n => n.Key, n => n.Value);
        using var stop = new CancellationTokenSource();
        var workload = new MeshWorkload(members, seed: 21, keys: 2000);
        var writing = workload.RunAsync(TimeSpan.FromSeconds(40), stop.Token);
        await Task.Delay(TimeSpan.FromSeconds(4));

        await h.StopDaemonAsync();
        h.WriteConfig(three.Replace("[paris, lyon, nice]", "[paris, lyon, nice, lille]"));
        Assert.Equal(12, h.Config.Subscriptions.Count);
        await h.ApplyAsync();
        h.StartDaemon();
        foreach (var from in new[] { "paris", "lyon", "nice" })
            await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["lille"], $"mesh_{from}_lille") == "streaming",
                TimeSpan.FromSeconds(120), $"mesh_{from}_lille streaming");
        await Task.Delay(TimeSpan.FromSeconds(4));
        await stop.CancelAsync();
        try { await writing; } catch (OperationCanceledException) { }
        output.WriteLine($"{workload.Transactions} transactions during the join");
        await h.WaitCaughtUpAsync(180);

        await AssertAllIdenticalAsync(h, "public.kv", 100);
        // Rows each member wrote arrived on lille, by the copy or by its stream.
        foreach (var writer in new[] { "paris", "lyon", "nice" })
            Assert.True(await h["lille"].ScalarAsync<long>($"SELECT count(*) FROM kv WHERE writer = '{writer}'") > 0, $"no row of {writer} on lille");
    }
}
