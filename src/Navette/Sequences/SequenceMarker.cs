using Npgsql;

namespace Navette.Sequences;

/// <summary>
/// Writes the last values of a node's sequences as an in-stream marker (<c>navette.sequence_values</c>), unless they
/// did not move since the last one. Sequences are not in PostgreSQL's logical decoding stream; this marker puts them
/// there, after every row that used them.
/// </summary>
internal static class SequenceMarker
{
    private const string Sql = """
        WITH s AS (
            SELECT n.nspname::text AS schema_name, c.relname::text AS seq_name, CASE WHEN c.relkind = 'S' THEN pg_catalog.pg_sequence_last_value(c.oid) END AS v,
                   coalesce(tn.nspname::text, '') AS owner_schema, coalesce(t.relname::text, '') AS owner_table
              FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                                               AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
              LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
              LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
             WHERE c.relkind = 'S' AND n.nspname NOT IN ('navette', 'pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
               -- (CASE: the conditions of a WHERE run in any order, and these functions refuse other relations)
               AND CASE WHEN c.relkind = 'S' THEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT') ELSE false END),
        cur AS (
            SELECT array_agg(schema_name ORDER BY schema_name, seq_name) AS schemas, array_agg(seq_name ORDER BY schema_name, seq_name) AS names,
                   array_agg(v ORDER BY schema_name, seq_name) AS vals, array_agg(owner_schema ORDER BY schema_name, seq_name) AS os,
                   array_agg(owner_table ORDER BY schema_name, seq_name) AS ot
              FROM s WHERE v IS NOT NULL),
        last AS (SELECT * FROM navette.sequence_values ORDER BY id DESC LIMIT 1),
        old AS (DELETE FROM navette.sequence_values WHERE created_at < now() - interval '1 hour' AND id < (SELECT max(id) FROM navette.sequence_values))
        INSERT INTO navette.sequence_values (schemas, names, last_values, owner_schemas, owner_tables)
        SELECT cur.schemas, cur.names, cur.vals, cur.os, cur.ot FROM cur
         WHERE cur.schemas IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM last WHERE last.schemas = cur.schemas AND last.names = cur.names AND last.last_values = cur.vals)
        """;

    /// <summary>Returns true when a marker was written (some sequence moved).</summary>
    public static async Task<bool> WriteAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(Sql, conn);
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }
}
