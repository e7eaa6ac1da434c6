namespace Navette.Consistency;

/// <summary>A table of a subscription to compare: its key and compared columns as the origin has them.</summary>
internal sealed record CompareSubject(string Subscription, string From, string To, string OriginConnectionString, string TargetConnectionString,
    string Schema, string Table, string[] KeyColumns, string[] Columns, bool TargetWrites)
{
    public string Name => $"{Schema}.{Table}";
}

internal enum DifferenceKind { Missing, Extra, Different }

/// <summary>A row that differs: missing on the target, extra there, or different. <see cref="Key"/> holds the key values as text.</summary>
internal sealed record RowDifference(DifferenceKind Kind, string?[] Key)
{
    public string KeyText(IReadOnlyList<string> keyColumns) => string.Join(", ", keyColumns.Select((c, i) => $"{c}={Key[i] ?? "NULL"}"));
}

/// <summary>What comparing one table found.</summary>
internal sealed class TableComparison(CompareSubject subject)
{
    public CompareSubject Subject => subject;
    public long OriginRows { get; set; }
    public long Chunks { get; set; }
    public List<RowDifference> Differences { get; } = new();
    /// <summary>Ranges that changed under every attempt to compare them: neither identical nor known to differ.</summary>
    public int UnsettledRanges { get; set; }
    public string? Error { get; set; }
    public bool Identical => Error is null && UnsettledRanges == 0 && Differences.Count == 0;
    public int Count(DifferenceKind kind) => Differences.Count(d => d.Kind == kind);
}
