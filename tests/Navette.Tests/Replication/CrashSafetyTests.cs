using System.Diagnostics;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>
/// The daemon as a real process, killed with SIGKILL at random moments (during the initial copy and while
/// streaming) under a continuous write load, and restarted each time: at the end nothing may be lost or applied
/// twice. NAVETTE_SOAK=1 runs a much longer version.
/// </summary>
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";

    private static bool Soak => Environment.GetEnvironmentVariable("NAVETTE_SOAK") == "1";

    [Fact]
    public async Task Daemon_killed_at_random_moments_loses_and_doubles_nothing()
    {
        var kills = Soak ? 150 : 25;
        var copyKills = Soak ? 8 : 3;
        var seedRows = Soak ? 600_000 : 300_000;
        var random = new Random(Environment.TickCount);
        var seed = random.Next();
        output.WriteLine($"random seed {seed}");
        random = new Random(seed);

        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h["origin"].ExecuteAsync(LedgerWorkload.OriginSchema);
        await h["replica"].ExecuteAsync(LedgerWorkload.ReplicaSchema);
        await LedgerWorkload.SeedAsync(h["origin"], seedRows);
        h.WriteConfig($$"""
            sets:
              money: { tables: [{{LedgerWorkload.Tables}}] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [money], copy_workers: 2 }
            """);
        await h.ApplyAsync();

        await using var load = LedgerWorkload.Start(h["origin"], perSecond: Soak ? 400 : 200, output);
        await load.WaitForCommitsAsync(20, TimeSpan.FromSeconds(30));
        var clock = Stopwatch.StartNew();

        // Kills during the initial copy: the next run must empty the partial copy and start over.
        var killedCopying = 0;
        for (var i = 0; i < copyKills * 3 && killedCopying < copyKills; i++)
        {
            await using var daemon = NavetteProcess.StartDaemon(output, h.ConfigPath, $"daemon#{i + 1}");
            // The copy is under way once its slot exists (the log says so); the state alone may be a leftover.
            Assert.True(await daemon.WaitForOutputAsync("; copying ", TimeSpan.FromSeconds(60)), "the daemon exited by itself:\n" + daemon.RecentOutput());
            // The copy takes about a second (indexes are built after the data): the first kill comes early
            // enough to land inside it, later ones anywhere.
            await Task.Delay(killedCopying == 0 ? random.Next(0, 50) : random.Next(0, 400));
            daemon.Kill();
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10));
            if (!daemon.Printed("initial copy done")) killedCopying++;
            else break; // the copy got through before the kill
        }
        Assert.True(killedCopying >= 1, "no kill landed during the initial copy");
        output.WriteLine($"{killedCopying} kill(s) during the copy, {clock.Elapsed.TotalSeconds:F1} s");

        // Kills while streaming, at random moments after the start (some before streaming is even set up).
        long lastApplied = -1;
        for (var i = 0; i < kills; i++)
        {
            await using var daemon = NavetteProcess.StartDaemon(output, h.ConfigPath, $"daemon#{copyKills * 3 + i + 1}");
            if (i % 4 == 0)
            {
                // Now and then, make sure the run gets as far as streaming before the kill.
                await Eventually.TrueAsync(async () => (await NodeQueries.SlotAsync(h["origin"], Sub))?.Active == true || daemon.HasExited,
                    TimeSpan.FromSeconds(90), "the daemon to stream", pollMs: 50);
            }
            // Counted from the daemon's first log line, not from the process start: on a loaded machine the runtime's
            // own start-up can take seconds, and kills that land before the daemon does anything test nothing.
            Assert.True(await daemon.WaitForOutputAsync("navette run:", TimeSpan.FromSeconds(60)), "the daemon exited by itself:\n" + daemon.RecentOutput());
            await Task.Delay(random.Next(200, 3000));
            if (i % 5 == 4)
            {
                // Before a progress check the run is given the chance to apply something: on a loaded machine every
                // earlier run may have been killed before its first batch.
                await Eventually.TrueAsync(async () => (await NodeQueries.SubscriptionAsync(h["replica"], Sub))?.RowsApplied > lastApplied || daemon.HasExited,
                    TimeSpan.FromSeconds(120), "the daemon to apply rows", pollMs: 50);
            }
            Assert.False(daemon.HasExited, "the daemon exited by itself:\n" + daemon.RecentOutput());
            daemon.Kill();
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(10));
            if (i % 5 == 4)
            {
                var applied = (await NodeQueries.SubscriptionAsync(h["replica"], Sub))!.RowsApplied;
                output.WriteLine($"after {i + 1} streaming kills: {applied} rows applied, writer at {load.Committed} transactions, {clock.Elapsed.TotalSeconds:F1} s");
                Assert.True(applied > lastApplied, "no progress between kills");
                lastApplied = applied;
            }
        }

        // A last run that is left alone: the writer stops, the replica catches up, and the ledger must be exact.
        await using (var daemon = NavetteProcess.StartDaemon(output, h.ConfigPath, "daemon#final"))
        {
            await load.WaitForCommitsAsync(50, TimeSpan.FromSeconds(30));
            var committed = await load.StopAsync();
            Assert.True(committed > 1000, $"the writer committed only {committed} transactions");
            var wait = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(150), "wait", "-c", h.ConfigPath, "--timeout", "120");
            Assert.True(wait.ExitCode == 0, $"navette wait: {wait}\ndaemon:\n{daemon.RecentOutput()}");
            await LedgerWorkload.AssertIntactAsync(h["origin"], h["replica"], seedRows + committed);
            daemon.Terminate();
            await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20));
        }
        output.WriteLine($"{killedCopying} kills during the copy, {kills} while streaming; {clock.Elapsed.TotalSeconds:F1} s");
    }
}
