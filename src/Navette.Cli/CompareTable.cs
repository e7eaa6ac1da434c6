using System.Globalization;
using Navette.Consistency;

namespace Navette.Cli;

/// <summary>The human and JSON forms of <c>navette compare</c> and <c>navette repair</c>.</summary>
internal static class CompareTable
{
    public static void Write(TextWriter w, IReadOnlyList<TableComparison> results, bool details)
    {
        var header = new[] { "SUBSCRIPTION", "FROM", "TO", "TABLE", "ROWS", "RESULT" };
        var rows = results.Select(r => new[]
        {
            r.Subject.Subscription, r.Subject.From, r.Subject.To, r.Subject.Name, r.OriginRows.ToString(CultureInfo.InvariantCulture), Verdict(r),
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        w.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var r in rows) w.WriteLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        if (!details) return;
        foreach (var r in results.Where(r => r.Differences.Count > 0))
        {
            w.WriteLine($"{r.Subject.Subscription} {r.Subject.Name}:");
            foreach (var d in r.Differences)
                w.WriteLine($"  {d.Kind.ToString().ToLowerInvariant(),-9} {d.KeyText(r.Subject.KeyColumns)}");
        }
    }

    public static string Verdict(TableComparison r)
    {
        if (r.Error is not null) return "error: " + r.Error;
        var parts = new List<string>();
        if (r.Differences.Count > 0)
            parts.Add($"differs: {r.Count(DifferenceKind.Missing)} missing, {r.Count(DifferenceKind.Extra)} extra, {r.Count(DifferenceKind.Different)} different");
        if (r.UnsettledRanges > 0) parts.Add($"{r.UnsettledRanges} range(s) kept changing, compare again");
        return parts.Count == 0 ? "identical" : string.Join("; ", parts);
    }

    public static object Json(TableComparison r) => new
    {
        subscription = r.Subject.Subscription,
        from = r.Subject.From,
        to = r.Subject.To,
        table = r.Subject.Name,
        key_columns = r.Subject.KeyColumns,
        rows = r.OriginRows,
        identical = r.Identical,
        missing = r.Differences.Where(d => d.Kind == DifferenceKind.Missing).Select(d => d.Key),
        extra = r.Differences.Where(d => d.Kind == DifferenceKind.Extra).Select(d => d.Key),
        different = r.Differences.Where(d => d.Kind == DifferenceKind.Different).Select(d => d.Key),
        unsettled_ranges = r.UnsettledRanges,
        error = r.Error,
    };
}
