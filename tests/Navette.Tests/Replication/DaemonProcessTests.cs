using System.Diagnostics;
using System.Text.Json;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>
/// The navette command as an operator runs it: the daemon stopped by signals, and status and wait reporting on
/// it, each a real process.
/// </summary>
public sealed class DaemonProcessTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";
    private static readonly TimeSpan CliTimeout = TimeSpan.FromSeconds(60);

    private async Task<ReplicationHarness> LedgerPairAsync()
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h["origin"].ExecuteAsync(LedgerWorkload.OriginSchema);
        await h["replica"].ExecuteAsync(LedgerWorkload.ReplicaSchema);
        await LedgerWorkload.SeedAsync(h["origin"], 2000);
        h.WriteConfig($$"""
            sets:
              money: { tables: [{{LedgerWorkload.Tables}}] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [money] }
            """);
        await h.ApplyAsync();
        return h;
    }

    [Fact]
    public async Task Sigterm_and_sigint_stop_the_daemon_cleanly_mid_load_and_it_resumes()
    {
        await using var h = await LedgerPairAsync();
        await using var load = LedgerWorkload.Start(h["origin"], perSecond: 250, output);

        foreach (var (signal, round) in new[] { ("TERM", 1), ("INT", 2), ("TERM", 3) })
        {
            await using var daemon = NavetteProcess.StartDaemon(output, h.ConfigPath, $"daemon#{round}");
            await Eventually.TrueAsync(async () => (await NodeQueries.SlotAsync(h["origin"], Sub))?.Active == true || daemon.HasExited,
                TimeSpan.FromSeconds(60), "the daemon to stream", pollMs: 50);
            var applied = (await NodeQueries.SubscriptionAsync(h["replica"], Sub))!.RowsApplied;
            await Eventually.TrueAsync(async () => (await NodeQueries.SubscriptionAsync(h["replica"], Sub))!.RowsApplied > applied + 100,
                TimeSpan.FromSeconds(30), "rows to be applied");

            var clock = Stopwatch.StartNew();
            if (signal == "TERM") daemon.Terminate(); else daemon.Interrupt();
            var code = await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15));
            output.WriteLine($"SIG{signal}: exit code {code} after {clock.Elapsed.TotalSeconds:F2} s");
            Assert.True(code == 0, $"SIG{signal}: exit code {code}\n{daemon.RecentOutput()}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"SIG{signal}: took {clock.Elapsed.TotalSeconds:F1} s to stop");
            Assert.Equal("stopped", await NodeQueries.StateAsync(h["replica"], Sub));
            await Eventually.TrueAsync(async () => (await NodeQueries.SlotAsync(h["origin"], Sub))!.Active == false,
                TimeSpan.FromSeconds(10), "the slot to be released");
            await load.WaitForCommitsAsync(100, TimeSpan.FromSeconds(30)); // the origin goes on while navette is down
        }

        await using (var daemon = NavetteProcess.StartDaemon(output, h.ConfigPath, "daemon#final"))
        {
            var committed = await load.StopAsync();
            var wait = await NavetteProcess.RunAsync(output, CliTimeout, "wait", "-c", h.ConfigPath, "--timeout", "50");
            Assert.True(wait.ExitCode == 0, wait.ToString());
            await LedgerWorkload.AssertIntactAsync(h["origin"], h["replica"], 2000 + committed);
            daemon.Terminate();
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        }
    }

    [Fact]
    public async Task Status_json_and_wait_report_through_the_command_line()
    {
        await using var h = await LedgerPairAsync();
        h.StartDaemon();
        await using var load = LedgerWorkload.Start(h["origin"], perSecond: 100, output);
        await load.WaitForCommitsAsync(200, TimeSpan.FromSeconds(30));

        var wait = await NavetteProcess.RunAsync(output, CliTimeout, "wait", "-c", h.ConfigPath, "--timeout", "50");
        Assert.True(wait.ExitCode == 0, wait.ToString());
        Assert.Contains("caught up", wait.StdOut);

        // Streaming under load: lag figures present, rows counted, slot in use.
        var status = await StatusAsync(h, expectedExit: 0);
        Assert.Equal(Sub, status.GetProperty("name").GetString());
        Assert.Equal("origin", status.GetProperty("from").GetString());
        Assert.Equal("replica", status.GetProperty("to").GetString());
        Assert.Equal("streaming", status.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, status.GetProperty("error").ValueKind);
        Assert.True(status.GetProperty("slot_active").GetBoolean());
        Assert.True(status.GetProperty("rows_applied").GetInt64() >= 200, status.ToString());
        Assert.True(status.GetProperty("transactions_applied").GetInt64() >= 100, status.ToString());
        var lagBytes = status.GetProperty("lag_bytes").GetInt64();
        Assert.InRange(lagBytes, 0, 16L << 20);
        Assert.InRange(status.GetProperty("lag_seconds").GetDouble(), 0, 30);
        Assert.InRange(status.GetProperty("retained_wal_bytes").GetInt64(), lagBytes, 64L << 20);
        Assert.NotNull(status.GetProperty("applied_lsn").GetString());
        Assert.NotNull(status.GetProperty("last_commit_time").GetString());

        var table = await NavetteProcess.RunAsync(output, CliTimeout, "status", "-c", h.ConfigPath);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains(Sub, table.StdOut);
        Assert.Contains("streaming", table.StdOut);

        // The daemon stops; the origin goes on: wait gives up with exit 3 naming the subscription.
        await h.StopDaemonAsync();
        await load.WaitForCommitsAsync(100, TimeSpan.FromSeconds(30));
        var timedOut = await NavetteProcess.RunAsync(output, CliTimeout, "wait", "-c", h.ConfigPath, "--timeout", "2");
        Assert.True(timedOut.ExitCode == 3, timedOut.ToString());
        Assert.Contains($"subscription {Sub}", timedOut.StdErr);
        var stopped = await StatusAsync(h, expectedExit: 0);
        Assert.Equal("stopped", stopped.GetProperty("state").GetString());
        Assert.False(stopped.GetProperty("slot_active").GetBoolean());
        Assert.True(stopped.GetProperty("lag_bytes").GetInt64() > 0, stopped.ToString());

        // Back up: wait succeeds and nothing was lost.
        h.StartDaemon();
        var committed = await load.StopAsync();
        var again = await NavetteProcess.RunAsync(output, CliTimeout, "wait", "-c", h.ConfigPath, "--timeout", "50");
        Assert.True(again.ExitCode == 0, again.ToString());
        await LedgerWorkload.AssertIntactAsync(h["origin"], h["replica"], 2000 + committed);
        var caughtUp = await StatusAsync(h, expectedExit: 0);
        Assert.Equal("streaming", caughtUp.GetProperty("state").GetString());
    }

    private async Task<JsonElement> StatusAsync(ReplicationHarness h, int expectedExit)
    {
        var result = await NavetteProcess.RunAsync(output, CliTimeout, "status", "-c", h.ConfigPath, "--json");
        Assert.True(result.ExitCode == expectedExit, result.ToString());
        using var doc = JsonDocument.Parse(result.StdOut);
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        return doc.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == Sub).Clone();
    }
}
