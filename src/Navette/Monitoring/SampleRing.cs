namespace Navette.Monitoring;

/// <summary>One subscription at one moment, as the dashboard charts it.</summary>
internal sealed record Sample(
    DateTime At,
    long? LagBytes,
    double? LagSeconds,
    double RowsPerSecond,
    double TransactionsPerSecond,
    long? RetainedWalBytes,
    string State);

/// <summary>
/// The last <see cref="Capacity"/> samples of a subscription (an hour at one sample every 5 s), oldest first:
/// a fixed array written round, so the daemon's memory does not grow with its uptime.
/// </summary>
internal sealed class SampleRing(int capacity)
{
    private readonly Sample?[] _items = new Sample?[capacity];
    private readonly Lock _lock = new();
    private int _next;
    private int _count;

    public int Capacity => capacity;

    public void Add(Sample sample)
    {
        lock (_lock)
        {
            _items[_next] = sample;
            _next = (_next + 1) % capacity;
            _count = Math.Min(_count + 1, capacity);
        }
    }

    public IReadOnlyList<Sample> Snapshot()
    {
        lock (_lock)
        {
            var result = new Sample[_count];
            var start = (_next - _count + capacity) % capacity;
            for (var i = 0; i < _count; i++)
                result[i] = _items[(start + i) % capacity]!;
            return result;
        }
    }
}
