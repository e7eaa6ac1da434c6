using Navette.Status;

namespace Navette.Monitoring;

/// <summary>
/// Renders <c>/metrics</c>: gauges from the last status read (lag, retained WAL, state, copy progress) and counters
/// from the workers (applied transactions, rows, bytes, conflicts, restarts, batch histograms). Every
/// per-subscription series carries the labels <c>subscription</c>, <c>from</c> and <c>to</c>.
/// </summary>
internal static class MetricsExporter
{
    public static readonly string[] States = ["initializing", "copying", "streaming", "stopped", "failed", "unreachable", "not installed", "unknown"];

    public static string Render(DaemonMonitor monitor, IReadOnlyList<SubscriptionStatus> rows)
    {
        var w = new PrometheusWriter();
        var labels = rows.ToDictionary(r => r.Name, r => new[] { ("subscription", r.Name), ("from", r.From), ("to", r.To) }, StringComparer.Ordinal);

        w.Family("navette_up", "gauge", "1 while the daemon runs; the timestamp of its start is navette_start_time_seconds.");
        w.Sample("navette_up", [], 1);
        w.Family("navette_start_time_seconds", "gauge", "When the daemon started, in seconds since the Unix epoch.");
        w.Sample("navette_start_time_seconds", [], new DateTimeOffset(monitor.StartedAt).ToUnixTimeMilliseconds() / 1000.0);

        w.Family("navette_subscription_state", "gauge", "1 for the subscription's current state (initializing, copying, streaming, stopped, failed, unreachable), 0 for the others.");
        foreach (var r in rows)
            foreach (var state in States)
                w.Sample("navette_subscription_state", [.. labels[r.Name], ("state", state)], r.State == state ? 1 : 0);

        w.Family("navette_subscription_running", "gauge", "1 when this daemon runs a worker for the subscription.");
        foreach (var r in rows)
            w.Sample("navette_subscription_running", labels[r.Name], monitor.Workers.ContainsKey(r.Name) && !monitor.Dropped.ContainsKey(r.Name) ? 1 : 0);

        Gauge(w, rows, labels, "navette_lag_bytes", "WAL on the origin not yet confirmed applied on the target (pg_current_wal_lsn() - confirmed_flush_lsn).", r => r.LagBytes);
        Gauge(w, rows, labels, "navette_lag_seconds", "How far the target is behind the origin in time (the walsender's replay_lag, or the time since the last applied commit when not streaming).", r => r.LagSeconds);
        Gauge(w, rows, labels, "navette_lag_threshold_seconds", "The lag above which /health reports the subscription (lag_threshold).", r => r.LagThresholdSeconds);
        Gauge(w, rows, labels, "navette_last_applied_commit_timestamp_seconds", "Origin commit time of the last transaction applied on the target, in seconds since the Unix epoch.",
            r => r.LastCommitTime is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t.ToUniversalTime(), DateTimeKind.Utc)).ToUnixTimeMilliseconds() / 1000.0 : null);

        var slotLabels = rows.ToDictionary(r => r.Name, r => labels[r.Name].Append(("slot", r.Slot)).ToArray(), StringComparer.Ordinal);
        Gauge(w, rows, slotLabels, "navette_slot_retained_wal_bytes", "WAL the origin keeps for the subscription's slot (pg_current_wal_lsn() - restart_lsn).", r => r.RetainedWalBytes);
        Gauge(w, rows, slotLabels, "navette_slot_active", "1 when a walsender reads the slot.", r => r.RetainedWalBytes is null ? null : r.SlotActive ? 1 : 0);
        Gauge(w, rows, slotLabels, "navette_wal_retention_warn_bytes", "Retained WAL above which status, metrics and the dashboard warn (wal_retention.warn).", r => r.WalRetentionWarnBytes);
        Gauge(w, rows, slotLabels, "navette_wal_retention_limit_bytes", "Retained WAL above which the daemon drops the slot (wal_retention.limit; absent when unset).", r => r.WalRetentionLimitBytes);

        var metrics = rows.Where(r => monitor.Metrics.ContainsKey(r.Name)).Select(r => (Row: r, M: monitor.Metrics[r.Name])).ToList();
        w.Family("navette_applied_transactions_total", "counter", "Source transactions applied on the target by this daemon (since its start).");
        foreach (var (r, m) in metrics) w.Sample("navette_applied_transactions_total", labels[r.Name], m.Transactions);
        w.Family("navette_applied_rows_total", "counter", "Row changes (inserts, updates, deletes) applied on the target by this daemon.");
        foreach (var (r, m) in metrics) w.Sample("navette_applied_rows_total", labels[r.Name], m.Rows);
        w.Family("navette_applied_bytes_total", "counter", "Approximate size of the row images applied (the decoded values' text).");
        foreach (var (r, m) in metrics) w.Sample("navette_applied_bytes_total", labels[r.Name], m.Bytes);

        w.Family("navette_conflicts_total", "counter", "Conflicts met while applying, by type.");
        foreach (var (r, m) in metrics)
            foreach (var (type, n) in m.Conflicts.Snapshot())
                w.Sample("navette_conflicts_total", [.. labels[r.Name], ("type", type)], n);

        w.Family("navette_worker_restarts_total", "counter", "Times the subscription's worker failed and was restarted.");
        foreach (var (r, _) in metrics)
            w.Sample("navette_worker_restarts_total", labels[r.Name], monitor.Workers.TryGetValue(r.Name, out var worker) ? worker.Restarts : 0);

        w.Family("navette_apply_batch_transactions", "histogram", "Source transactions per target transaction (batch).");
        foreach (var (r, m) in metrics) w.Histogram("navette_apply_batch_transactions", labels[r.Name], m.BatchTransactions.Snapshot());
        w.Family("navette_apply_batch_duration_seconds", "histogram", "Time to apply and commit one batch on the target.");
        foreach (var (r, m) in metrics) w.Histogram("navette_apply_batch_duration_seconds", labels[r.Name], m.BatchSeconds.Snapshot());

        var copying = rows.SelectMany(r => r.Copy.Select(c => (Row: r, Table: c))).ToList();
        w.Family("navette_initial_copy_rows", "gauge", "Rows copied so far by the running initial copy, per table.");
        foreach (var (r, c) in copying) w.Sample("navette_initial_copy_rows", [.. labels[r.Name], ("table", c.Table)], c.RowsCopied);
        w.Family("navette_initial_copy_bytes", "gauge", "COPY data bytes transferred so far by the running initial copy, per table.");
        foreach (var (r, c) in copying) w.Sample("navette_initial_copy_bytes", [.. labels[r.Name], ("table", c.Table)], c.BytesCopied);
        w.Family("navette_initial_copy_estimated_rows", "gauge", "The origin's row estimate of each table being copied (reltuples; absent before ANALYZE).");
        foreach (var (r, c) in copying.Where(x => x.Table.EstimatedRows is not null))
            w.Sample("navette_initial_copy_estimated_rows", [.. labels[r.Name], ("table", c.Table)], c.EstimatedRows!.Value);
        w.Family("navette_initial_copy_table_done", "gauge", "1 once a table of the running initial copy is fully copied.");
        foreach (var (r, c) in copying) w.Sample("navette_initial_copy_table_done", [.. labels[r.Name], ("table", c.Table)], c.Finished ? 1 : 0);
        return w.ToString();
    }

    private static void Gauge(PrometheusWriter w, IReadOnlyList<SubscriptionStatus> rows, Dictionary<string, (string, string)[]> labels,
        string name, string help, Func<SubscriptionStatus, double?> value)
    {
        w.Family(name, "gauge", help);
        foreach (var r in rows)
            if (value(r) is { } v)
                w.Sample(name, labels[r.Name], v);
    }
}
