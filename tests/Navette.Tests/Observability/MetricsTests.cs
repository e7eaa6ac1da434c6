using System.Text.Json;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>/metrics and /api/status of a running daemon, checked against activity whose size the test knows.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class MetricsTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";
    private const int Seeded = 500;
    private const int Transactions = 20;
    private const int RowsPerTransaction = 5;

    [Fact]
    public async Task Applied_counters_equal_the_known_activity_and_lag_returns_to_zero_after_wait()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.items (id int PRIMARY KEY, payload text NOT NULL)");
        await h["origin"].ExecuteAsync($"INSERT INTO items SELECT g, 'seed' FROM generate_series(1, {Seeded}) g");
        h.WriteConfig($$"""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [shop], lag_threshold: 45s }
            """);
        await h.ApplyAsync();
        await using var daemon = await MonitoredDaemon.StartAsync(output, h.ConfigPath);
        (string, string) sub = ("subscription", Sub);

        var m = await Eventually.ValueAsync(daemon.MetricsAsync, s => s.Value("navette_subscription_state", sub, ("state", "streaming")) == 1,
            TimeSpan.FromSeconds(90), "the subscription to stream");
        Assert.Equal(0, m.Value("navette_subscription_state", sub, ("state", "copying")));
        Assert.Equal(45, m.Value("navette_lag_threshold_seconds", sub));
        Assert.Equal(0, m.Value("navette_worker_restarts_total", sub));
        Assert.Equal(1, m.Value("navette_subscription_running", sub, ("from", "origin"), ("to", "replica")));
        Assert.NotNull(m.Value("navette_slot_retained_wal_bytes", sub, ("slot", "navette_" + Sub)));
        Assert.Equal(1L << 30, m.Value("navette_wal_retention_warn_bytes", sub));
        Assert.Null(m.Value("navette_wal_retention_limit_bytes", sub));

        // The copy recorded its progress in the catalog: every seeded row, table marked finished.
        var copied = await h["replica"].ScalarAsync<long>("SELECT rows_copied FROM navette.copy_progress WHERE finished_at IS NOT NULL AND table_name = 'public.items'");
        Assert.Equal(Seeded, copied);

        await using (var conn = new NpgsqlConnection(h["origin"].ConnectionString))
        {
            await conn.OpenAsync();
            for (var t = 0; t < Transactions; t++)
            {
                await using var cmd = new NpgsqlCommand(
                    $"INSERT INTO items SELECT g, 'tx {t}' FROM generate_series({Seeded + 1 + t * RowsPerTransaction}, {Seeded + (t + 1) * RowsPerTransaction}) g", conn);
                await cmd.ExecuteNonQueryAsync();
            }
        }
        m = await Eventually.ValueAsync(daemon.MetricsAsync, s => s.Value("navette_applied_rows_total", sub) >= Transactions * RowsPerTransaction,
            TimeSpan.FromSeconds(60), "the rows to be counted");
        Assert.Equal(Transactions * RowsPerTransaction, m.Value("navette_applied_rows_total", sub));
        Assert.Equal(Transactions, m.Value("navette_applied_transactions_total", sub));
        Assert.True(m.Value("navette_applied_bytes_total", sub) > Transactions * RowsPerTransaction * 4, "applied bytes should cover the row images");
        // Every applied transaction is in exactly one batch.
        Assert.Equal(Transactions, m.Value("navette_apply_batch_transactions_sum", sub));
        var batches = m.Value("navette_apply_batch_transactions_count", sub)!.Value;
        Assert.InRange(batches, 1, Transactions);
        Assert.Equal(batches, m.Value("navette_apply_batch_transactions_bucket", sub, ("le", "+Inf")));
        Assert.Equal(batches, m.Value("navette_apply_batch_duration_seconds_count", sub));
        Assert.Equal(Seeded + Transactions * RowsPerTransaction, await NodeQueries.CountAsync(h["replica"], "items"));

        // One more transaction touching every row: one transaction, that many rows.
        var total = Seeded + Transactions * RowsPerTransaction;
        await h["origin"].ExecuteAsync("UPDATE items SET payload = payload || '!'");
        m = await Eventually.ValueAsync(daemon.MetricsAsync, s => s.Value("navette_applied_rows_total", sub) >= Transactions * RowsPerTransaction + total,
            TimeSpan.FromSeconds(60), "the update to be counted");
        Assert.Equal(Transactions * RowsPerTransaction + total, m.Value("navette_applied_rows_total", sub));
        Assert.Equal(Transactions + 1, m.Value("navette_applied_transactions_total", sub));

        var wait = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "wait", "-c", h.ConfigPath, "--timeout", "50");
        Assert.True(wait.ExitCode == 0, wait.ToString());
        m = await Eventually.ValueAsync(daemon.MetricsAsync, s => s.Value("navette_lag_bytes", sub) is < 64 * 1024,
            TimeSpan.FromSeconds(30), "the lag to return near 0");
        output.WriteLine($"lag after wait: {m.Value("navette_lag_bytes", sub)} bytes, {m.Value("navette_lag_seconds", sub)} s");
        Assert.True(m.Value("navette_lag_seconds", sub) < 5);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", total);

        // /api/status is navette status --json.
        var cli = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "--json", "-c", h.ConfigPath);
        Assert.True(cli.ExitCode == 0, cli.ToString());
        var (code, api) = await daemon.GetTextAsync("api/status");
        Assert.Equal(200, code);
        using var fromCli = JsonDocument.Parse(cli.StdOut);
        using var fromApi = JsonDocument.Parse(api);
        var a = fromCli.RootElement.EnumerateArray().Single();
        var b = fromApi.RootElement.EnumerateArray().Single();
        Assert.Equal(a.EnumerateObject().Select(p => p.Name), b.EnumerateObject().Select(p => p.Name));
        foreach (var field in new[] { "name", "from", "to", "state", "rows_applied", "slot", "lag_threshold_seconds", "wal_retention_warn_bytes" })
            Assert.Equal(a.GetProperty(field).ToString(), b.GetProperty(field).ToString());
    }
}
