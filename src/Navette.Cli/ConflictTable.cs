using System.Globalization;
using Navette.Conflicts;

namespace Navette.Cli;

/// <summary>The human form of <c>navette conflicts</c>: one line per conflict, then how to decide the aborted ones.</summary>
internal static class ConflictTable
{
    public static void Write(TextWriter w, IReadOnlyList<ConflictEntry> entries)
    {
        if (entries.Count == 0)
        {
            w.WriteLine("no conflict logged");
            return;
        }
        var header = new[] { "NODE", "ID", "LOGGED (UTC)", "SUBSCRIPTION", "TYPE", "TABLE", "KEY", "LOCAL", "INCOMING", "POLICY", "OUTCOME" };
        var rows = entries.Select(e => new[]
        {
            e.Node, e.Id.ToString(CultureInfo.InvariantCulture), Time(e.LoggedAt), e.Subscription, e.Type, e.Table, e.Key.GetRawText(),
            e.LocalOrigin is null ? "-" : $"{e.LocalOrigin}@{(e.LocalCommitTime is { } t ? Time(t) : "?")}",
            $"{e.RemoteOrigin}@{Time(e.RemoteCommitTime)}", e.Policy, e.Outcome + (e.Decision is { } d ? $" ({d} decided)" : ""),
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
        w.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var r in rows)
            w.WriteLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        var waiting = entries.Where(e => e.Outcome == "aborted" && e.Decision is null).ToList();
        foreach (var e in waiting)
            w.WriteLine($"{e.Node} #{e.Id} stopped {e.Subscription}: local {e.Local?.GetRawText() ?? "(no row)"}, incoming {e.Remote?.GetRawText() ?? "-"}; " +
                        $"decide with navette conflicts resolve --node {e.Node} --id {e.Id} --keep incoming|local");
    }

    private static string Time(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture);
}
