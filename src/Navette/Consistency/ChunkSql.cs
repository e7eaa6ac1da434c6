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
/// The summary (or the row list) of a key range of a table, computed the same way on every node. Each row is hashed
/// with hash_record_extended over its compared columns (binary values through each type's own hash function; columns
/// of types without one, listed in textColumns, through their text printed under the session settings navette's
/// sessions share). The range is cut in buckets at the given inner bounds, and each bucket is summarised by its row
/// count and the bit_xor of the hashes (keys are unique, so no row can cancel itself out). In detail mode, every row's key values (as text)
/// and hash instead.
/// </summary>
internal static class ChunkSql
{
    /// <summary>
    /// Columns: bs (bucket numbers, non-empty ones), bn (rows), b1 (xor). Each bucket is its own index range scan with a
    /// plain aggregate (the inner ones through a LATERAL join over the bounds): grouping the rows of the whole range
    /// by bucket costs twice as much per row as hashing them.
    /// </summary>
    public static string Buckets(TargetTable table, IReadOnlyList<string> keyColumns, IReadOnlyList<string> columns, IReadOnlyList<bool> textColumns,
        string?[]? lower, string?[]? upper, IReadOnlyList<string?[]> innerBounds, SqlParameters p)
    {
        var keys = keyColumns.Select(k => "t." + Sql.Ident(k)).ToList();
        var aggregate = $"count(*) AS n, bit_xor({RowHash(columns, textColumns)}) AS c1 FROM {table.OnlyName} AS t";
        string Where(string?[]? lo, string?[]? hi) => RangeWhere(table, keyColumns, lo, hi, keys, p);
        string buckets;
        if (innerBounds.Count == 0)
        {
            buckets = $"SELECT 0 AS b, {aggregate}{Where(lower, upper)}";
        }
        else
        {
            var m = innerBounds.Count;
            buckets = $"SELECT 0 AS b, {aggregate}{Where(lower, innerBounds[0])}";
            if (m > 1)
            {
                var k = keyColumns.Count;
                var unnest = string.Join(", ", Enumerable.Range(0, k).Select(i => p.TextArray(innerBounds.Take(m - 1).Select(bound => bound[i])))
                    .Concat(Enumerable.Range(0, k).Select(i => p.TextArray(innerBounds.Skip(1).Select(bound => bound[i])))));
                var names = string.Join(", ", Enumerable.Range(0, k).Select(i => "lo" + i).Concat(Enumerable.Range(0, k).Select(i => "hi" + i)));
                string Row(string prefix) => "(" + string.Join(", ", keyColumns.Select((c, i) => $"u.{prefix}{i}::{table.Columns[c].CastType}")) + ")";
                var row = "(" + string.Join(", ", keys) + ")";
                buckets += $" UNION ALL SELECT u.i::int4, s.n, s.c1 FROM unnest({unnest}) WITH ORDINALITY AS u({names}, i) " +
                           $"CROSS JOIN LATERAL (SELECT {aggregate} WHERE {row} >= {Row("lo")} AND {row} < {Row("hi")}) AS s";
            }
            buckets += $" UNION ALL SELECT {m} AS b, {aggregate}{Where(innerBounds[m - 1], upper)}";
        }
        return "SELECT coalesce(array_agg(g.b ORDER BY g.b), '{}') AS bs, coalesce(array_agg(g.n ORDER BY g.b), '{}') AS bn, " +
               $"coalesce(array_agg(g.c1 ORDER BY g.b), '{{}}') AS b1 FROM ({buckets}) AS g WHERE g.n > 0";
    }

    /// <summary>
    /// Columns: n (rows), ks (key values as text, one array per row), hs (hashes, in the same order). With
    /// <paramref name="wanted"/>, only the rows of those buckets of the range (cut at <paramref name="innerBounds"/>).
    /// </summary>
    public static string Detail(TargetTable table, IReadOnlyList<string> keyColumns, IReadOnlyList<string> columns, IReadOnlyList<bool> textColumns,
        string?[]? lower, string?[]? upper, IReadOnlyList<string?[]> innerBounds, IReadOnlyList<int>? wanted, SqlParameters p)
    {
        var keyValues = $"ARRAY[{string.Join(", ", keyColumns.Select(k => "t." + Sql.Ident(k) + "::text"))}]";
        var where = RangeWhere(table, keyColumns, lower, upper, keyColumns.Select(k => "t." + Sql.Ident(k)).ToList(), p);
        if (wanted is not null && innerBounds.Count > 0)
            where += (where.Length == 0 ? " WHERE " : " AND ") +
                     $"{BucketExpression(table, keyColumns, innerBounds, p)} = ANY({p.Add(wanted.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer)})";
        // No order needed: rows are matched by key; both aggregates of one query see the rows in the same order.
        return "SELECT count(*) AS n, coalesce(array_agg(x.k), '{}') AS ks, coalesce(array_agg(x.h), '{}') AS hs " +
               $"FROM (SELECT {RowHash(columns, textColumns)} AS h, {keyValues} AS k FROM {table.OnlyName} AS t{where}) AS x";
    }

    private static string RowHash(IReadOnlyList<string> columns, IReadOnlyList<bool> textColumns) =>
        "pg_catalog.hash_record_extended(ROW(" +
        string.Join(", ", columns.Select((c, i) => "t." + Sql.Ident(c) + (textColumns[i] ? "::text" : ""))) + "), 0)";

    /// <summary>width_bucket of the key over the inner bounds: 0 below the first, i between bound i and bound i+1.</summary>
    private static string BucketExpression(TargetTable table, IReadOnlyList<string> keyColumns, IReadOnlyList<string?[]> bounds, SqlParameters p)
    {
        if (keyColumns.Count == 1)
        {
            var type = table.Columns[keyColumns[0]].CastType;
            return $"width_bucket(t.{Sql.Ident(keyColumns[0])}, {p.TextArray(bounds.Select(b => b[0]))}::{type}[])";
        }
        var rows = bounds.Select(b => "ROW(" + string.Join(", ", b.Select((v, i) => $"{p.Text(v)}::{table.Columns[keyColumns[i]].CastType}")) + ")");
        return $"width_bucket(ROW({string.Join(", ", keyColumns.Select(k => "t." + Sql.Ident(k)))}), ARRAY[{string.Join(", ", rows)}])";
    }

    /// <summary>Which of the columns are hashed through their text (their type has no hash function).</summary>
    public static bool[] TextColumns(TargetTable table, IReadOnlyList<string> columns) =>
        columns.Select(c => !table.Columns.TryGetValue(c, out var col) || !col.Hashable).ToArray();

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

    /// <summary>Keys of a sample of about <paramref name="percent"/>% of the table's rows, in key order (for planning large tables).</summary>
    public static string SampledKeys(TargetTable table, IReadOnlyList<string> keyColumns, double percent, SqlParameters p)
    {
        var texts = string.Join(", ", keyColumns.Select(k => $"t.{Sql.Ident(k)}::text"));
        var order = string.Join(", ", keyColumns.Select(k => "t." + Sql.Ident(k)));
        return $"SELECT ARRAY[{texts}] FROM {table.OnlyName} AS t TABLESAMPLE BERNOULLI ({p.Add(percent, NpgsqlDbType.Double)}) ORDER BY {order}";
    }
}
