namespace Navette.Capture;

/// <summary>
/// One tuple as sent by pgoutput in text form. A value is null for SQL NULL; columns whose TOASTed
/// value did not change in an UPDATE are flagged in <see cref="Unchanged"/> and must not be written.
/// </summary>
internal sealed class RowImage(string?[] values, bool[]? unchanged)
{
    public string?[] Values { get; } = values;
    public bool[]? Unchanged { get; } = unchanged;

    public bool IsUnchanged(int column) => Unchanged is not null && Unchanged[column];

    /// <summary>True when no column carries a value (every one is an unchanged TOASTed value).</summary>
    public bool AllUnchanged => Unchanged is not null && Array.IndexOf(Unchanged, false) < 0;

    public long ApproximateBytes
    {
        get
        {
            long n = 16;
            foreach (var v in Values) n += 8 + (v?.Length ?? 0) * 2;
            return n;
        }
    }
}
