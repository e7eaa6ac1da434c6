using System.Text;
using Navette.Apply;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Consistency;

/// <summary>
/// Numbers parameters as they are added, for statements built piece by piece.
/// </summary>
internal sealed class SqlParameters
{
    public List<NpgsqlParameter> List { get; } = new();

    public string Add(object? value, NpgsqlDbType type)
    {
        List.Add(new NpgsqlParameter { Value = value ?? DBNull.Value, NpgsqlDbType = type });
        return "$" + List.Count;
    }

    public string Text(string? value) => Add(value, NpgsqlDbType.Text);

    public string TextArray(IEnumerable<string?> values) => Add(values.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Text) + "::text[]";
}

/// <summary>
/// The summary (or the row list) of a key range of a table, computed the same way on every node: each row's text
/// (the compared columns in one order, printed under the session settings navette's sessions share) hashed with
/// hashtextextended and hashtext, combined with bit_xor and sum, plus the row count. In detail mode, every row's key
/// values (as text, row by row) and hash instead.
/// </summary>
internal static class ChunkSql
{
    public static string Summary(TargetTable table, IReadOnlyList<string> keyColumns, IReadOnlyList<string> columns,
        string?[]? lower, string?[]? upper, bool detail, SqlParameters p)
    {
        var rowText = $"ROW({string.Join(", ", columns.Select(c => "t." + Sql.Ident(c)))})::text";
        var keyValues = $"ARRAY[{string.Join(", ", keyColumns.Select(k => "t." + Sql.Ident(k) + "::text"))}]";
        var sb = new StringBuilder("SELECT count(*) AS n, bit_xor(x.h) AS c1, sum(x.h32) AS c2, ")
            .Append(detail ? "coalesce(array_agg(x.k ORDER BY x.k), '{}') AS ks, coalesce(array_agg(x.h ORDER BY x.k), '{}') AS hs" : "NULL::text[] AS ks, NULL::int8[] AS hs")
            .Append(" FROM (SELECT pg_catalog.hashtextextended(").Append(rowText).Append(", 0) AS h, pg_catalog.hashtext(").Append(rowText)
            .Append(")::int8 AS h32, ").Append(keyValues).Append(" AS k FROM ").Append(table.OnlyName).Append(" AS t")
            .Append(RangeWhere(table, keyColumns, lower, upper, keyColumns.Select(k => "t." + Sql.Ident(k)).ToList(), p)).Append(") AS x");
        return sb.ToString();
    }

    /// <summary>" WHERE (k1, k2) &gt;= (lower) AND (k1, k2) &lt; (upper)", each bound optional, over the given key expressions.</summary>
    public static string RangeWhere(TargetTable table, IReadOnlyList<string> keyColumns, string?[]? lower, string?[]? upper,
        IReadOnlyList<string> keyExpressions, SqlParameters p)
    {
        var row = $"({string.Join(", ", keyExpressions)})";
        string Bound(string?[] values) =>
            "(" + string.Join(", ", values.Select((v, i) => $"{p.Text(v)}::{table.Columns[keyColumns[i]].CastType}")) + ")";
        var parts = new List<string>();
        if (lower is not null) parts.Add($"{row} >= {Bound(lower)}");
        if (upper is not null) parts.Add($"{row} < {Bound(upper)}");
        return parts.Count == 0 ? "" : " WHERE " + string.Join(" AND ", parts);
    }

    /// <summary>
    /// Keys splitting the range into parts of about <paramref name="rowsPerPart"/> rows, in key order (each row's
    /// key values as text). Exact: numbers the range's keys.
    /// </summary>
    public static string Boundaries(TargetTable table, IReadOnlyList<string> keyColumns, string?[]? lower, string?[]? upper, long rowsPerPart, SqlParameters p)
    {
        var keys = string.Join(", ", keyColumns.Select(k => "t." + Sql.Ident(k)));
        var texts = string.Join(", ", keyColumns.Select((_, i) => $"b.k{i}::text"));
        var aliased = string.Join(", ", keyColumns.Select((k, i) => $"t.{Sql.Ident(k)} AS k{i}"));
        var order = string.Join(", ", keyColumns.Select((_, i) => $"b.k{i}"));
        return $"SELECT ARRAY[{texts}] FROM (SELECT {aliased}, row_number() OVER (ORDER BY {keys}) AS rn FROM {table.OnlyName} AS t" +
               RangeWhere(table, keyColumns, lower, upper, keyColumns.Select(k => "t." + Sql.Ident(k)).ToList(), p) +
               $") AS b WHERE b.rn % {p.Add(rowsPerPart, NpgsqlDbType.Bigint)} = 0 ORDER BY {order}";
    }

    /// <summary>Keys from a sample of about <paramref name="percent"/>% of the table's pages, in key order (for planning large tables).</summary>
    public static string SampledKeys(TargetTable table, IReadOnlyList<string> keyColumns, double percent, SqlParameters p)
    {
        var texts = string.Join(", ", keyColumns.Select(k => $"t.{Sql.Ident(k)}::text"));
        var order = string.Join(", ", keyColumns.Select(k => "t." + Sql.Ident(k)));
        return $"SELECT ARRAY[{texts}] FROM {table.OnlyName} AS t TABLESAMPLE SYSTEM ({p.Add(percent, NpgsqlDbType.Double)}) ORDER BY {order}";
    }
}
