using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Daemon;
using Navette.Status;

namespace Navette.Monitoring;

/// <summary>
/// What the daemon knows about its subscriptions beyond the catalog: the workers' counters, an hour of samples
/// per subscription, recent events, and the last status read (shared by /metrics, /health, the dashboard and the
/// WAL retention guard, so that a busy scraper does not multiply the queries on the nodes).
/// </summary>
internal sealed class DaemonMonitor
{
    public static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(5);
    public const int SampleCount = 720; // one hour

    private static readonly TimeSpan StatusTimeout = TimeSpan.FromSeconds(20);

    private readonly StatusReader _reader;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _reading = new(1, 1);
    private readonly Dictionary<string, (long Rows, long Transactions, DateTime At)> _previous = new(StringComparer.Ordinal);
    private readonly HashSet<string> _walWarned = new(StringComparer.Ordinal);
    private (DateTime At, IReadOnlyList<SubscriptionStatus> Rows)? _last;

    public DaemonMonitor(NavetteConfig config, IReadOnlyList<string> running, ILogger log)
    {
        Config = config;
        Running = running;
        _reader = new StatusReader(config);
        _log = log;
        Metrics = running.ToDictionary(s => s, s => new SubscriptionMetrics(s, Events), StringComparer.Ordinal);
        Samples = config.Subscriptions.Keys.ToDictionary(s => s, _ => new SampleRing(SampleCount), StringComparer.Ordinal);
        _conflicts = new ConflictLogPoller(config, Metrics);
    }

    private readonly ConflictLogPoller _conflicts;

    public NavetteConfig Config { get; }
    public DateTime StartedAt { get; } = DateTime.UtcNow;
    public IReadOnlyList<string> Running { get; }
    public RecentEvents Events { get; } = new();
    public IReadOnlyDictionary<string, SubscriptionMetrics> Metrics { get; }
    public IReadOnlyDictionary<string, SampleRing> Samples { get; }

    /// <summary>The workers, once the daemon created them (restarts and last errors come from there).</summary>
    public IReadOnlyDictionary<string, SubscriptionWorker> Workers { get; set; } = new Dictionary<string, SubscriptionWorker>();

    /// <summary>Subscriptions the daemon does not run because the WAL retention guard dropped their slot.</summary>
    public IReadOnlyDictionary<string, string> Dropped => _dropped;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _dropped = new(StringComparer.Ordinal);

    public void MarkDropped(string subscription, string reason) => _dropped[subscription] = reason;

    /// <summary>The status of every subscription of the file, read at most <paramref name="maxAge"/> ago.</summary>
    public async Task<IReadOnlyList<SubscriptionStatus>> StatusAsync(TimeSpan maxAge, CancellationToken ct)
    {
        if (_last is { } cached && DateTime.UtcNow - cached.At <= maxAge) return cached.Rows;
        await _reading.WaitAsync(ct);
        try
        {
            if (_last is { } again && DateTime.UtcNow - again.At <= maxAge) return again.Rows;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(StatusTimeout);
            var rows = await _reader.ReadAsync(timeout.Token);
            _last = (DateTime.UtcNow, rows);
            return rows;
        }
        finally
        {
            _reading.Release();
        }
    }

    /// <summary>Takes one sample of every subscription; returns the status it was taken from.</summary>
    public async Task<IReadOnlyList<SubscriptionStatus>> SampleAsync(CancellationToken ct)
    {
        var rows = await StatusAsync(TimeSpan.Zero, ct);
        var now = DateTime.UtcNow;
        foreach (var s in rows)
        {
            double rowsRate = 0, txRate = 0;
            if (Metrics.TryGetValue(s.Name, out var m))
            {
                var (r, t) = (m.Rows, m.Transactions);
                if (_previous.TryGetValue(s.Name, out var p) && now > p.At)
                {
                    var secs = (now - p.At).TotalSeconds;
                    rowsRate = (r - p.Rows) / secs;
                    txRate = (t - p.Transactions) / secs;
                }
                _previous[s.Name] = (r, t, now);
            }
            else
            {
                rowsRate = s.RowsPerSecond;
            }
            if (Samples.TryGetValue(s.Name, out var ring))
                ring.Add(new Sample(now, s.LagBytes, s.LagSeconds, rowsRate, txRate, s.RetainedWalBytes, s.State));
            WarnOnce(s);
        }
        await _conflicts.PollAsync(ct);
        return rows;
    }

    /// <summary>Logs a WAL retention warning when a slot crosses its warn size (once per crossing, not every sample).</summary>
    private void WarnOnce(SubscriptionStatus s)
    {
        var warning = Config.Subscriptions.TryGetValue(s.Name, out var sub) ? StatusReader.WalWarning(sub, s.RetainedWalBytes) : null;
        if (warning is not null && _walWarned.Add(s.Name))
            _log.LogWarning("subscription {Subscription}: {Warning}", s.Name, warning);
        else if (warning is null)
            _walWarned.Remove(s.Name);
    }

    /// <summary>Health of the subscriptions this daemon runs.</summary>
    public async Task<HealthReport> HealthAsync(CancellationToken ct)
    {
        IReadOnlyList<SubscriptionStatus> rows;
        try
        {
            rows = await StatusAsync(TimeSpan.FromSeconds(1), ct);
        }
        catch (Exception e) when (e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            return new HealthReport(false, ["reading the status of the nodes timed out"]);
        }
        return HealthReport.Evaluate(rows.Where(r => Running.Contains(r.Name)).ToList(), Dropped);
    }
}
