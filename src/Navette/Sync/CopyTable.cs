namespace Navette.Sync;

/// <summary>A table to copy, as published on the origin.</summary>
internal sealed record CopyTable(string Schema, string Name, string[] Columns, bool Binary, bool Partitioned, long SizeBytes)
{
    public string QualifiedName => Sql.Qualified(Schema, Name);
    public string ColumnList => string.Join(", ", Columns.Select(Sql.Ident));
    public override string ToString() => $"{Schema}.{Name}";
}
