using System.Text;

namespace Navette.Tests.Apply;

/// <summary>
/// A column and the values (SQL expressions) it cycles through. <paramref name="Large"/> values are only
/// used outside keys (an index entry must stay small).
/// </summary>
internal sealed record ColumnSpec(string Name, string Type, string[] Values, string[]? Large = null)
{
    public string[] All => Large is null ? Values : [.. Values, .. Large];
}

/// <summary>
/// Builds SQL writing rows whose columns cycle through their <see cref="ColumnSpec"/> values, so a handful of
/// rows covers every value of every column, in varying combinations, and updates can move each row to the
/// next combination.
/// </summary>
internal sealed class TypeMatrix(string table, string idColumn, IReadOnlyList<ColumnSpec> columns, bool keysOnly = false)
{
    public string Table => table;

    /// <summary>Rows needed for every value of every column to appear at least once.</summary>
    public int Variants => columns.Max(c => Pick(c).Length);

    private string[] Pick(ColumnSpec c) => keysOnly ? c.Values : c.All;

    public string Value(ColumnSpec c, int variant)
    {
        var values = Pick(c);
        return values[variant % values.Length];
    }

    public string ColumnDefinitions =>
        string.Join(",\n", columns.Select(c => $"    {c.Name} {c.Type}"));

    /// <summary>Inserts row <paramref name="id"/> with combination <paramref name="variant"/> (null: every column NULL).</summary>
    public string Insert(int id, int? variant) =>
        $"INSERT INTO {table} ({idColumn}, {string.Join(", ", columns.Select(c => c.Name))}) VALUES ({id}, " +
        string.Join(", ", columns.Select((c, i) => variant is { } v ? Value(c, v + i) : "NULL")) + ");\n";

    /// <summary>SET list moving a row to combination <paramref name="variant"/> (null: every column NULL).</summary>
    public string SetList(int? variant, Func<ColumnSpec, bool>? which = null) =>
        string.Join(", ", columns.Select((c, i) => (c, i)).Where(x => which?.Invoke(x.c) ?? true)
            .Select(x => $"{x.c.Name} = {(variant is { } v ? Value(x.c, v + x.i) : "NULL")}"));

    /// <summary>Inserts <paramref name="count"/> rows from <paramref name="firstId"/>, plus an all-NULL row at <paramref name="firstId"/> - 1 when asked.</summary>
    public string InsertRows(int firstId, int count, bool withNullRow)
    {
        var sb = new StringBuilder();
        if (withNullRow) sb.Append(Insert(firstId - 1, null));
        for (var i = 0; i < count; i++) sb.Append(Insert(firstId + i, i));
        return sb.ToString();
    }
}
