namespace Navette.Monitoring;

/// <summary>
/// The counters one subscription's worker feeds as it applies, for <c>/metrics</c> and the dashboard's
/// throughput. They count from the daemon's start (Prometheus handles the reset of a restart).
/// </summary>
internal sealed class SubscriptionMetrics(string subscription, RecentEvents events)
{
    private static readonly double[] BatchSizeBounds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
    private static readonly double[] BatchSecondsBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private long _transactions;
    private long _rows;
    private long _bytes;

    public string Subscription => subscription;
    public long Transactions => Interlocked.Read(ref _transactions);
    public long Rows => Interlocked.Read(ref _rows);
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Source transactions per target transaction.</summary>
    public Histogram BatchTransactions { get; } = new(BatchSizeBounds);

    /// <summary>Time from the first statement of a batch to its commit on the target.</summary>
    public Histogram BatchSeconds { get; } = new(BatchSecondsBounds);

    public ConflictCounters Conflicts { get; } = new(subscription, events);

    /// <summary>One batch committed on the target: <paramref name="transactions"/> source transactions carrying <paramref name="rows"/> rows.</summary>
    public void RecordBatch(int transactions, long rows, long bytes, TimeSpan elapsed)
    {
        Interlocked.Add(ref _transactions, transactions);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Add(ref _bytes, bytes);
        BatchTransactions.Observe(transactions);
        BatchSeconds.Observe(elapsed.TotalSeconds);
    }
}
