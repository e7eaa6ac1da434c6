using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>
/// The target or the origin goes down while the daemon streams and the writer keeps going around the outage:
/// the worker must notice, retry on its own (supervised backoff), and converge with nothing lost or doubled.
/// </summary>
public sealed class NodeOutageTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";

    [Fact]
    public async Task Target_immediate_shutdown_and_start_mid_stream()
    {
        await using var h = await StartAsync();
        await using var load = LedgerWorkload.Start(h["origin"], perSecond: 200, output);
        await StreamingWithProgressAsync(h, load);

        await h["replica"].StopAsync(ShutdownMode.Immediate);
        await load.WaitForCommitsAsync(300, TimeSpan.FromSeconds(30)); // the origin goes on without its replica
        await h["replica"].StartAsync();

        await StreamingWithProgressAsync(h, load);
        await FinishAsync(h, load);
    }

    [Fact]
    public async Task Origin_immediate_shutdown_and_start_then_killed_postmaster_mid_stream()
    {
        await using var h = await StartAsync();
        await using var load = LedgerWorkload.Start(h["origin"], perSecond: 200, output);
        await StreamingWithProgressAsync(h, load);

        // Writes in flight when the origin stops fail; the writer reconnects once it is back.
        await h["origin"].StopAsync(ShutdownMode.Immediate);
        await Task.Delay(1500);
        await h["origin"].StartAsync();
        await StreamingWithProgressAsync(h, load);

        await h["origin"].KillPostmasterAsync();
        await Task.Delay(1500);
        await h["origin"].StartAsync();
        await StreamingWithProgressAsync(h, load);

        await FinishAsync(h, load);
        Assert.True(load.Failed > 0, "the writer never noticed the outages");
    }

    private async Task<ReplicationHarness> StartAsync()
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h["origin"].ExecuteAsync(LedgerWorkload.OriginSchema);
        await h["replica"].ExecuteAsync(LedgerWorkload.ReplicaSchema);
        await LedgerWorkload.SeedAsync(h["origin"], 5000);
        h.WriteConfig($$"""
            sets:
              money: { tables: [{{LedgerWorkload.Tables}}] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [money] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        return h;
    }

    /// <summary>Waits until the worker streams again and applies transactions committed from now on.</summary>
    private async Task StreamingWithProgressAsync(ReplicationHarness h, WriteLoad load)
    {
        await load.WaitForCommitsAsync(50, TimeSpan.FromSeconds(60));
        var before = (await LedgerWorkload.SummaryAsync(h["origin"])).Max;
        await Eventually.TrueAsync(async () => (await LedgerWorkload.SummaryAsync(h["replica"])).Max >= before,
            TimeSpan.FromSeconds(60), $"the replica to apply ledger id {before}");
        output.WriteLine($"replica has ledger id {before}; writer: {load.Committed} committed, {load.Failed} failed");
    }

    private static async Task FinishAsync(ReplicationHarness h, WriteLoad load)
    {
        var committed = await load.StopAsync();
        await h.WaitCaughtUpAsync();
        await LedgerWorkload.AssertIntactAsync(h["origin"], h["replica"], 5000 + committed / 2);
        var row = await NodeQueries.SubscriptionAsync(h["replica"], Sub);
        Assert.Equal("streaming", row!.State);
        Assert.Null(row.Error);
    }
}
