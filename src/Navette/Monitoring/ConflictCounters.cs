using System.Collections.Concurrent;

namespace Navette.Monitoring;

/// <summary>
/// Conflicts seen by one subscription, by type (<c>insert_exists</c>, <c>update_missing</c>, <c>update_differs</c>,
/// <c>delete_missing</c>, ...): the hook conflict detection calls for each conflict it resolves. Exposed as
/// <c>navette_conflicts_total{type=...}</c> and listed on the dashboard.
/// </summary>
internal sealed class ConflictCounters(string subscription, RecentEvents events)
{
    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

    /// <summary>Counts one conflict; <paramref name="detail"/> (table, key, resolution) is shown on the dashboard, never exported as a label.</summary>
    public void Record(string type, string? detail = null)
    {
        _counts.AddOrUpdate(type, 1, (_, n) => n + 1);
        events.Add(RecentEvents.Conflict, subscription, detail is null ? type : $"{type}: {detail}");
    }

    public IReadOnlyDictionary<string, long> Snapshot() => new SortedDictionary<string, long>(_counts, StringComparer.Ordinal);
}
