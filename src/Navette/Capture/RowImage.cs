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

    /// <summary>
    /// The managed memory this image and its change hold: the change and image objects, the value array (8 bytes a slot) and
    /// each string (about 24 bytes of header and length, then UTF-16). An estimate that undercounts lets the spill threshold
    /// and the in-flight bound be exceeded by as much.
    /// </summary>
    public long ApproximateBytes
    {
        get
        {
            long n = 56 + 32 + 24 + 8L * Values.Length;
            foreach (var v in Values)
                if (v is not null) n += 24 + v.Length * 2L;
            return n;
        }
    }
}

/// <summary>
/// Fills a <see cref="RowImage"/> column by column, in the order pgoutput sends them. Apart from the stream so that the
/// per-row work Navette does on top of Npgsql's decoding can be measured without a replication connection.
/// </summary>
internal struct RowImageBuilder(int columns)
{
    private readonly string?[] _values = new string?[columns];
    private bool[]? _unchanged;
    private int _next;

    public void AddNull() => _next++;

    public void AddUnchangedToast() => (_unchanged ??= new bool[_values.Length])[_next++] = true;

    public void Add(string value) => _values[_next++] = value;

    public readonly RowImage Build() => new(_values, _unchanged);
}
