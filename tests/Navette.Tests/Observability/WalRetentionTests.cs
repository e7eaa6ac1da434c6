using System.Text.Json;
using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>
/// wal_retention: a slot pinned by a stuck subscription (the replica refuses a row) while the origin writes WAL in
/// another database. Over the warn size, status and metrics warn; over the limit, the daemon drops the slot and
/// records a failed state that names navette resync.
/// </summary>
[Collection(ObservabilityCollection.Name)]
public sealed class WalRetentionTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";
    private const long Warn = 20L << 20;
    private const long Limit = 60L << 20;

    /// <summary>Moves the origin's WAL position by about one 16 MB segment per round, outside the replicated database.</summary>
    private static async Task GenerateWalAsync(LocalCluster origin, int segments)
    {
        await using var conn = new NpgsqlConnection(origin.ConnectionStringFor("filler"));
        await conn.OpenAsync();
        for (var i = 0; i < segments; i++)
        {
            await using var cmd = new NpgsqlCommand("INSERT INTO filler VALUES (1); SELECT pg_switch_wal();", conn);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    [Fact]
    public async Task Over_warn_status_and_metrics_warn_and_over_the_limit_the_slot_is_dropped()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h["origin"].ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY, payload text NOT NULL)");
        // The replica refuses ids from a million up: the worker retries that transaction and the slot cannot move.
        await h["replica"].ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY CHECK (id < 1000000), payload text NOT NULL)");
        await h["origin"].ExecuteAsync("CREATE DATABASE filler");
        await using (var conn = new NpgsqlConnection(h["origin"].ConnectionStringFor("filler")))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE filler (x int)", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        h.WriteConfig($$"""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [shop], wal_retention: { warn: 20MB, limit: 60MB } }
            """);
        await h.ApplyAsync();
        await using var daemon = await MonitoredDaemon.StartAsync(output, h.ConfigPath);
        (string, string) sub = ("subscription", Sub);
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["replica"], Sub) == "streaming", TimeSpan.FromSeconds(90), "streaming");
        await h["origin"].ExecuteAsync("INSERT INTO items VALUES (1, 'fine'), (2000000, 'refused by the replica')");
        await Eventually.TrueAsync(async () => (await NodeQueries.SubscriptionAsync(h["replica"], Sub))?.Error?.Contains("items_id_check") == true,
            TimeSpan.FromSeconds(60), "the refusal to be recorded");

        // Over warn, under the limit.
        await GenerateWalAsync(h["origin"], 2);
        var retained = (await NodeQueries.SlotAsync(h["origin"], Sub))!.RetainedBytes;
        output.WriteLine($"retained after 2 segments: {retained} bytes");
        Assert.InRange(retained, Warn + 1, Limit - 1);
        var m = await Eventually.ValueAsync(daemon.MetricsAsync, s => s.Value("navette_slot_retained_wal_bytes", sub) > Warn,
            TimeSpan.FromSeconds(30), "metrics to show the retained WAL");
        Assert.Equal(Warn, m.Value("navette_wal_retention_warn_bytes", sub, ("slot", "navette_" + Sub)));
        Assert.Equal(Limit, m.Value("navette_wal_retention_limit_bytes", sub));
        var status = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "--json", "-c", h.ConfigPath);
        using (var json = JsonDocument.Parse(status.StdOut))
        {
            var warnings = json.RootElement[0].GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!).ToList();
            Assert.Contains(warnings, w => w.Contains("over wal_retention.warn (20MB)", StringComparison.Ordinal) && w.Contains("navette resync", StringComparison.Ordinal));
        }
        var table = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "-c", h.ConfigPath);
        Assert.Contains($"{Sub}: warning: slot navette_{Sub} retains", table.StdOut);
        Assert.NotNull(await NodeQueries.SlotAsync(h["origin"], Sub));
        await Eventually.TrueAsync(() => Task.FromResult(daemon.Process.Printed("over wal_retention.warn")), TimeSpan.FromSeconds(30), "the daemon to warn");

        // Over the limit: dropped, loudly, and recorded.
        await GenerateWalAsync(h["origin"], 3);
        await Eventually.TrueAsync(async () => await NodeQueries.SlotAsync(h["origin"], Sub) is null, TimeSpan.FromSeconds(60), "the slot to be dropped");
        var row = await Eventually.ValueAsync(() => NodeQueries.SubscriptionAsync(h["replica"], Sub), r => r?.Error?.StartsWith("WAL retention limit exceeded", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(30), "the failed state to be recorded");
        Assert.Equal("failed", row!.State);
        Assert.Contains($"run navette resync {Sub}", row.Error);
        Assert.True(daemon.Process.Printed("crit"), "the drop is logged at critical level");
        var health = await Eventually.ValueAsync(() => daemon.GetTextAsync("health"), r => r.Status == 503 && r.Body.Contains("navette resync"), TimeSpan.FromSeconds(30), "health to say why");
        output.WriteLine(health.Body);
        m = await daemon.MetricsAsync();
        Assert.Equal(0, m.Value("navette_subscription_running", sub));
        Assert.Equal(1, m.Value("navette_subscription_state", sub, ("state", "failed")));
        var after = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "-c", h.ConfigPath);
        Assert.Equal(1, after.ExitCode);
        Assert.Contains("navette resync", after.StdOut);

        // A new daemon does not start it again (its slot is gone: streaming cannot resume without a new copy).
        daemon.Process.Terminate();
        await daemon.Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await using var again = await MonitoredDaemon.StartAsync(output, h.ConfigPath);
        Assert.True(await again.Process.WaitForOutputAsync($"subscription {Sub} is not started: WAL retention limit exceeded", TimeSpan.FromSeconds(30)));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Null(await NodeQueries.SlotAsync(h["origin"], Sub));
        Assert.Equal(503, (await again.GetTextAsync("health")).Status);
    }
}
