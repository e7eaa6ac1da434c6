using System.Globalization;
using Navette.Status;

namespace Navette.Monitoring;

/// <summary>
/// Healthy means: every subscription the daemon runs is streaming, its slot has a reader, and its lag is within
/// its lag_threshold. Anything else is a reason, and one reason is enough for 503.
/// </summary>
internal sealed record HealthReport(bool Healthy, IReadOnlyList<string> Reasons)
{
    public static HealthReport Evaluate(IReadOnlyList<SubscriptionStatus> rows, IReadOnlyDictionary<string, string> dropped)
    {
        var reasons = new List<string>();
        foreach (var s in rows)
        {
            var who = $"subscription {s.Name} ({s.From} -> {s.To})";
            if (dropped.TryGetValue(s.Name, out var why))
                reasons.Add($"{who}: {why}");
            else if (s.State != "streaming")
                reasons.Add($"{who}: state {s.State}" + (s.Error is null ? "" : $": {s.Error}"));
            else if (!s.SlotActive)
                reasons.Add($"{who}: no worker is reading its slot");
            else if (s.LagSeconds is { } lag && lag > s.LagThresholdSeconds)
                reasons.Add($"{who}: lag {lag.ToString("F1", CultureInfo.InvariantCulture)} s over its lag_threshold of {s.LagThresholdSeconds.ToString(CultureInfo.InvariantCulture)} s");
        }
        return new HealthReport(reasons.Count == 0, reasons);
    }

    public string ToText(int subscriptions) => Healthy
        ? $"ok: {subscriptions} subscription(s) streaming within their lag thresholds\n"
        : "unhealthy:\n" + string.Concat(Reasons.Select(r => "  " + r + "\n"));
}
