namespace Navette.Monitoring;

/// <summary>What the dashboard lists as recent: errors, warnings and conflicts.</summary>
internal sealed record MonitoredEvent(DateTime At, string Kind, string? Subscription, string Message);

/// <summary>The last events of the daemon, newest last, bounded so a flapping node cannot grow it.</summary>
internal sealed class RecentEvents(int capacity = 200)
{
    public const string Error = "error";
    public const string Warning = "warning";
    public const string Conflict = "conflict";

    private readonly Queue<MonitoredEvent> _events = new();
    private readonly Lock _lock = new();

    public void Add(string kind, string? subscription, string message)
    {
        lock (_lock)
        {
            _events.Enqueue(new MonitoredEvent(DateTime.UtcNow, kind, subscription, message));
            while (_events.Count > capacity) _events.Dequeue();
        }
    }

    public IReadOnlyList<MonitoredEvent> Snapshot()
    {
        lock (_lock) return _events.ToArray();
    }
}
