using System.Collections.Concurrent;

namespace Navette.Monitoring;

/// <summary>
/// Conflicts met by one subscription, by type (the <c>conflict_type</c> of <c>navette.conflict_log</c>), exposed as
/// <c>navette_conflicts_total{type=...}</c> and listed on the dashboard. <see cref="ConflictLogPoller"/> feeds it from
/// the conflict log; code that sees a conflict in the daemon itself can call <see cref="Record"/> directly.
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

    /// <summary>Counts conflicts that happened before the daemon started (no event: they are not recent).</summary>
    public void Add(string type, long count) => _counts.AddOrUpdate(type, count, (_, n) => n + count);

    public IReadOnlyDictionary<string, long> Snapshot() => new SortedDictionary<string, long>(_counts, StringComparer.Ordinal);
}
