using Navette.Status;

namespace Navette.Monitoring.Http;

/// <summary>What the dashboard page polls (<c>/api/dashboard</c>): status, the sample history, recent events.</summary>
internal sealed record DashboardData(
    DateTime GeneratedAt,
    DateTime StartedAt,
    double SampleIntervalSeconds,
    bool Healthy,
    IReadOnlyList<string> HealthReasons,
    IReadOnlyList<string> Nodes,
    IReadOnlyList<SubscriptionStatus> Subscriptions,
    IReadOnlyDictionary<string, SampleSeries> Samples,
    IReadOnlyDictionary<string, long> Restarts,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> Conflicts,
    IReadOnlyList<MonitoredEvent> Events)
{
    public static async Task<DashboardData> ReadAsync(DaemonMonitor monitor, CancellationToken ct)
    {
        var rows = await monitor.StatusAsync(TimeSpan.FromSeconds(2), ct);
        var health = HealthReport.Evaluate(rows.Where(r => monitor.Running.Contains(r.Name)).ToList(), monitor.Dropped);
        return new DashboardData(
            DateTime.UtcNow,
            monitor.StartedAt,
            DaemonMonitor.SampleInterval.TotalSeconds,
            health.Healthy,
            health.Reasons,
            monitor.Config.Nodes.Keys.ToList(),
            rows,
            monitor.Samples.ToDictionary(s => s.Key, s => SampleSeries.Of(s.Value.Snapshot())),
            monitor.Workers.ToDictionary(w => w.Key, w => (long)w.Value.Restarts),
            monitor.Metrics.ToDictionary(m => m.Key, m => m.Value.Conflicts.Snapshot()),
            monitor.Events.Snapshot().Reverse().Take(50).ToList());
    }
}

/// <summary>One subscription's samples as columns (the shape uPlot draws), times in seconds since the Unix epoch.</summary>
internal sealed record SampleSeries(
    IReadOnlyList<double> Time,
    IReadOnlyList<double?> LagSeconds,
    IReadOnlyList<long?> LagBytes,
    IReadOnlyList<double> RowsPerSecond,
    IReadOnlyList<double> TransactionsPerSecond,
    IReadOnlyList<long?> RetainedWalBytes)
{
    public static SampleSeries Of(IReadOnlyList<Sample> s) => new(
        s.Select(x => new DateTimeOffset(x.At).ToUnixTimeMilliseconds() / 1000.0).ToList(),
        s.Select(x => x.LagSeconds).ToList(),
        s.Select(x => x.LagBytes).ToList(),
        s.Select(x => Math.Round(x.RowsPerSecond, 2)).ToList(),
        s.Select(x => Math.Round(x.TransactionsPerSecond, 2)).ToList(),
        s.Select(x => x.RetainedWalBytes).ToList());
}
