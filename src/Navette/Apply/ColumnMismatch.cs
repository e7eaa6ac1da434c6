using Navette.Capture;
using Npgsql;

namespace Navette.Apply;

/// <summary>
/// When the target refuses a value (a data exception: invalid input, value too long, out of range), PostgreSQL does not
/// say which column. The likely cause is a column whose type differs between origin and target; this names them, both
/// types written by the target's own format_type (the origin sends each column's type oid and modifier).
/// </summary>
internal static class ColumnMismatch
{
    public static bool IsDataError(Exception e) =>
        (e as PostgresException ?? e.InnerException as PostgresException) is { } pg
        && (pg.SqlState.StartsWith("22", StringComparison.Ordinal) || pg.SqlState == PostgresErrorCodes.DatatypeMismatch);

    /// <summary>"column code is character varying(50) on the origin but character varying(5) on the target", joined; empty when none differ.</summary>
    public static async Task<string> DescribeAsync(string connectionString, SourceRelation rel, CancellationToken ct)
    {
        if (rel.TypeMods.Length != rel.Columns.Length) return "";
        try
        {
            var cs = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5, CommandTimeout = 5 }.ConnectionString;
            await using var conn = new NpgsqlConnection(cs);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT s.name, pg_catalog.format_type(s.oid, nullif(s.mod, -1)), pg_catalog.format_type(a.atttypid, nullif(a.atttypmod, -1))
                  FROM unnest($3::text[], $4::oid[], $5::int[]) WITH ORDINALITY AS s(name, oid, mod, n)
                  JOIN pg_catalog.pg_attribute a ON a.attname = s.name AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attrelid = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
                                      WHERE ns.nspname = $1 AND c.relname = $2)
                 WHERE (s.oid, s.mod) IS DISTINCT FROM (a.atttypid, a.atttypmod)
                 ORDER BY s.n
                """, conn);
            cmd.Parameters.AddWithValue(rel.Schema);
            cmd.Parameters.AddWithValue(rel.Name);
            cmd.Parameters.AddWithValue(rel.Columns);
            cmd.Parameters.Add(new NpgsqlParameter { Value = rel.TypeOids, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Oid });
            cmd.Parameters.Add(new NpgsqlParameter { Value = rel.TypeMods, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Integer });
            var found = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                found.Add($"column {r.GetString(0)} is {(r.IsDBNull(1) ? "?" : r.GetString(1))} on the origin but {r.GetString(2)} on the target");
            return string.Join("; ", found);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Best effort: the refusal is reported either way, only without the column detail.
            return "";
        }
    }
}
