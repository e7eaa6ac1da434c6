namespace Navette.Monitoring;

/// <summary>A Prometheus-style histogram: cumulative bucket counts over fixed upper bounds, plus count and sum.</summary>
internal sealed class Histogram(params double[] bounds)
{
    private readonly Lock _lock = new();
    private readonly long[] _counts = new long[bounds.Length];
    private long _count;
    private double _sum;

    public IReadOnlyList<double> Bounds => bounds;

    public void Observe(double value)
    {
        lock (_lock)
        {
            _count++;
            _sum += value;
            for (var i = 0; i < bounds.Length; i++)
                if (value <= bounds[i]) _counts[i]++;
        }
    }

    /// <summary>A consistent copy: cumulative counts per bound (the +Inf bucket is <see cref="HistogramSnapshot.Count"/>).</summary>
    public HistogramSnapshot Snapshot()
    {
        lock (_lock) return new HistogramSnapshot(bounds, (long[])_counts.Clone(), _count, _sum);
    }
}

internal sealed record HistogramSnapshot(IReadOnlyList<double> Bounds, IReadOnlyList<long> Cumulative, long Count, double Sum);
