using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Navette.Status;

namespace Navette.Cli;

internal static class StatusJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}

/// <summary>The human form of <c>navette status</c>.</summary>
internal static class StatusTable
{
    public static void Write(TextWriter w, IReadOnlyList<SubscriptionStatus> rows)
    {
        var header = new[] { "SUBSCRIPTION", "FROM", "TO", "STATE", "LAG", "LAG S", "LAST COMMIT (UTC)", "ROWS/S", "ROWS", "WAL RETAINED" };
        var table = rows.Select(r => new[]
        {
            r.Name, r.From, r.To, r.State,
            r.LagBytes is { } b ? Bytes(b) : "-",
            r.LagSeconds is { } s ? s.ToString("F1", CultureInfo.InvariantCulture) : "-",
            r.LastCommitTime?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-",
            r.RowsPerSecond.ToString("F0", CultureInfo.InvariantCulture),
            r.RowsApplied.ToString(CultureInfo.InvariantCulture),
            r.RetainedWalBytes is { } x ? Bytes(x) : "-",
        }).ToList();
        WriteColumns(w, header, table);
        foreach (var r in rows.Where(r => r.Error is not null))
            w.WriteLine($"{r.Name}: {r.Error}");
    }

    /// <summary>A header and rows as left-aligned columns two spaces apart.</summary>
    public static void WriteColumns(TextWriter w, string[] header, IReadOnlyList<string[]> table)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, table.Count == 0 ? 0 : table.Max(t => t[i].Length))).ToArray();
        w.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var t in table)
            w.WriteLine(string.Join("  ", t.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
    }

    public static string Bytes(long b) => b switch
    {
        < 1024 => $"{b} B",
        < 1024 * 1024 => (b / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + " kB",
        < 1024L * 1024 * 1024 => (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MB",
        _ => (b / 1073741824.0).ToString("F2", CultureInfo.InvariantCulture) + " GB",
    };
}
