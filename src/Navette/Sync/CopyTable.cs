namespace Navette.Sync;

/// <summary>A table to copy, as published on the origin. <see cref="MainPages"/> is the size of its main fork in pages.</summary>
internal sealed record CopyTable(string Schema, string Name, string[] Columns, bool Binary, bool Partitioned, long SizeBytes, long MainPages = 0)
{
    public string QualifiedName => Sql.Qualified(Schema, Name);
    public string ColumnList => string.Join(", ", Columns.Select(Sql.Ident));
    public override string ToString() => $"{Schema}.{Name}";

    /// <summary><c>schema.table</c>, each part quoted only when it must be: shown to operators, and still a valid regclass.</summary>
    public string ReadableName => Readable(Schema) + "." + Readable(Name);

    private static string Readable(string part) =>
        part.Length > 0 && part[0] is (>= 'a' and <= 'z') or '_' && part.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '$')
            ? part
            : Sql.Ident(part);
}

/// <summary>
/// One unit of copy work: a whole table, or a range of its pages (TID range scan) so that several connections
/// share a large table. The first range has no lower bound and the last no upper bound, so rows on pages added
/// after the size was read are still covered.
/// </summary>
internal sealed record CopyChunk(CopyTable Table, long? FromPage, long? ToPage)
{
    /// <summary>Tables larger than this are split into ranges of about this size.</summary>
    public const long TargetBytes = 64L << 20;
    private const int MaxChunks = 64;

    public bool IsWhole => FromPage is null && ToPage is null;

    /// <summary>The COPY source: the table itself, or a SELECT when it is partitioned or a page range.</summary>
    public string CopySource =>
        IsWhole
            ? Table.Partitioned ? $"(SELECT {Table.ColumnList} FROM {Table.QualifiedName})" : $"{Table.QualifiedName} ({Table.ColumnList})"
            : $"(SELECT {Table.ColumnList} FROM ONLY {Table.QualifiedName} WHERE {Range})";

    private string Range => (FromPage, ToPage) switch
    {
        ({ } f, { } t) => $"ctid >= '({f},0)'::tid AND ctid < '({t},0)'::tid",
        ({ } f, null) => $"ctid >= '({f},0)'::tid",
        (null, { } t) => $"ctid < '({t},0)'::tid",
        _ => "true",
    };

    public static IEnumerable<CopyChunk> Plan(CopyTable table)
    {
        var mainBytes = table.MainPages * 8192;
        if (table.Partitioned || mainBytes <= TargetBytes || table.MainPages < 2)
        {
            yield return new CopyChunk(table, null, null);
            yield break;
        }
        var count = (int)Math.Min(MaxChunks, (mainBytes + TargetBytes - 1) / TargetBytes);
        var pages = (table.MainPages + count - 1) / count;
        for (var i = 0; i < count; i++)
            yield return new CopyChunk(table, i == 0 ? null : i * pages, i == count - 1 ? null : (i + 1) * pages);
    }
}
