using System.Globalization;
using Navette.Status;

namespace Navette.Cli;

/// <summary>The human form of <c>navette status</c>.</summary>
internal static class StatusTable
{
    public static void Write(TextWriter w, IReadOnlyList<SubscriptionStatus> rows)
    {
        var header = new[] { "SUBSCRIPTION", "FROM", "TO", "STATE", "SYNC", "LAG", "LAG S", "LAST COMMIT (UTC)", "ROWS/S", "ROWS", "WAL RETAINED" };
        var table = rows.Select(r => new[]
        {
            r.Name, r.From, r.To, r.State,
            r.Synchronous?.Shown ?? "async",
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
        WriteSynchronous(w, rows);
        foreach (var r in rows)
            foreach (var warning in r.Warnings)
                w.WriteLine($"{r.Name}: warning: {warning}");
        foreach (var r in rows.Where(r => r.Copy.Count > 0))
            WriteCopy(w, r);
    }

    /// <summary>A header and rows as left-aligned columns two spaces apart.</summary>
    public static void WriteColumns(TextWriter w, string[] header, IReadOnlyList<string[]> table)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, table.Count == 0 ? 0 : table.Max(t => t[i].Length))).ToArray();
        w.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var t in table)
            w.WriteLine(string.Join("  ", t.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
    }

    /// <summary>Per origin with synchronous subscriptions: its synchronous_standby_names and the commits waiting there now.</summary>
    private static void WriteSynchronous(TextWriter w, IReadOnlyList<SubscriptionStatus> rows)
    {
        foreach (var g in rows.Where(r => r.Synchronous is not null).GroupBy(r => r.From))
        {
            var s = g.First().Synchronous!;
            var wait = s.OriginCommitsWaiting is { } n
                ? n == 0 ? "no commit waiting" : string.Create(CultureInfo.InvariantCulture, $"{n} commit(s) waiting for synchronous replication, longest {s.OriginLongestWaitSeconds ?? 0:F1} s")
                : "commit wait unknown";
            w.WriteLine($"{g.Key}: synchronous_standby_names = '{s.OriginStandbyNames}' (quorum {s.Quorum} of {s.Of}); {wait}");
            foreach (var r in g)
            {
                var x = r.Synchronous!;
                var lags = x.SyncState is null ? "no walsender" : $"write/flush/replay lag {Seconds(x.WriteLagSeconds)}/{Seconds(x.FlushLagSeconds)}/{Seconds(x.ReplayLagSeconds)}";
                var degrade = x.DegradeAfterSeconds is { } d ? string.Create(CultureInfo.InvariantCulture, $", degrade_after {d:0.###} s") : "";
                w.WriteLine($"  {r.Name}: {x.Shown}{(x.Listed ? "" : " (not in synchronous_standby_names: commits do not wait for it)")}, {lags}{degrade}");
            }
        }
    }

    private static string Seconds(double? s) => s is { } v ? v.ToString("0.000", CultureInfo.InvariantCulture) + " s" : "-";

    private const int BarWidth = 24;

    /// <summary>One progress bar per table of a running initial copy.</summary>
    private static void WriteCopy(TextWriter w, SubscriptionStatus r)
    {
        var done = r.Copy.Count(c => c.Finished);
        w.WriteLine($"{r.Name}: initial copy, {done}/{r.Copy.Count} tables done");
        var width = r.Copy.Max(c => c.Table.Length);
        foreach (var c in r.Copy)
        {
            var fraction = c.Fraction;
            var filled = (int)Math.Round((fraction ?? 0) * BarWidth);
            var bar = fraction is null && c.Started && !c.Finished
                ? new string('~', BarWidth)
                : new string('#', filled) + new string('.', BarWidth - filled);
            var pct = c.Finished ? "done" : !c.Started ? "queued" : fraction is { } f ? (f * 100).ToString("F0", CultureInfo.InvariantCulture) + "%" : "";
            var rows = c.EstimatedRows is { } e && !c.Finished
                ? $"{c.RowsCopied.ToString("N0", CultureInfo.InvariantCulture)} / ~{e.ToString("N0", CultureInfo.InvariantCulture)} rows"
                : $"{c.RowsCopied.ToString("N0", CultureInfo.InvariantCulture)} rows";
            w.WriteLine($"  {c.Table.PadRight(width)}  [{bar}] {pct,6}  {rows}, {Bytes(c.BytesCopied)}");
        }
    }

    public static string Bytes(long b) => b switch
    {
        < 1024 => $"{b} B",
        < 1024 * 1024 => (b / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + " kB",
        < 1024L * 1024 * 1024 => (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MB",
        _ => (b / 1073741824.0).ToString("F2", CultureInfo.InvariantCulture) + " GB",
    };
}
