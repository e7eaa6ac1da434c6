using Npgsql;
using NpgsqlTypes;

namespace Navette.Apply;

/// <summary>Set-based writes of rows given as text values (repairs and resyncs): one statement per table and kind.</summary>
internal static class RowSetWriter
{
    /// <summary>Deletes the rows with these keys (values as text, in key column order); returns how many were deleted.</summary>
    public static async Task<int> DeleteAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, TargetTable target, IReadOnlyList<string?> keyColumns,
        IReadOnlyList<string?[]> keys, CancellationToken ct)
    {
        if (keys.Count == 0) return 0;
        var p = new List<NpgsqlParameter>();
        var arrays = string.Join(", ", keyColumns.Select((_, i) =>
        {
            p.Add(new NpgsqlParameter { Value = keys.Select(d => d[i]).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            return $"${p.Count}::text[]";
        }));
        var match = string.Join(" AND ", keyColumns.Select((c, i) =>
            $"t.{Sql.Ident(c!)} {target.Columns[c!].EqualityOperator ?? "="} d.k{i}::{target.Columns[c!].CastType}"));
        await using var cmd = new NpgsqlCommand(
            $"DELETE FROM {target.OnlyName} AS t USING unnest({arrays}) AS d({string.Join(", ", keyColumns.Select((_, i) => "k" + i))}) WHERE {match}", conn, tx);
        cmd.Parameters.AddRange(p.ToArray());
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Inserts rows (values as text, in <paramref name="columns"/> order; columns the target lacks are left out).</summary>
    public static async Task<int> InsertAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, TargetTable target, IReadOnlyList<string?> columns,
        IReadOnlyList<string?[]> rows, CancellationToken ct)
    {
        if (rows.Count == 0) return 0;
        var p = new List<NpgsqlParameter>();
        var writable = columns.Select((c, i) => (Name: c!, Index: i)).Where(c => target.Columns.ContainsKey(c.Name)).ToList();
        var arrays = string.Join(", ", writable.Select(c =>
        {
            p.Add(new NpgsqlParameter { Value = rows.Select(row => row[c.Index]).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            return $"${p.Count}::text[]";
        }));
        var names = string.Join(", ", writable.Select(c => Sql.Ident(c.Name)));
        var casts = string.Join(", ", writable.Select((c, i) => $"v.c{i}::{target.Columns[c.Name].CastType}"));
        await using var cmd = new NpgsqlCommand(
            $"INSERT INTO {target.QualifiedName} ({names}){(target.HasIdentityAlways ? " OVERRIDING SYSTEM VALUE" : "")} " +
            $"SELECT {casts} FROM unnest({arrays}) AS v({string.Join(", ", writable.Select((_, i) => "c" + i))})", conn, tx);
        cmd.Parameters.AddRange(p.ToArray());
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
