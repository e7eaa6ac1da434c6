using Npgsql;

namespace Navette.Sync;

/// <summary>Reads what a set of publications carries on the origin (partition roots, not leaves).</summary>
internal static class PublishedTables
{
    /// <summary>First OID available to user objects: types below it are built in, so their binary form is portable.</summary>
    private const int FirstNormalObjectId = 16384;

    public static async Task<List<CopyTable>> ReadAsync(NpgsqlConnection conn, IReadOnlyList<string> publications, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"""
            SELECT n.nspname, c.relname, c.relkind = 'p',
                   coalesce(pg_total_relation_size(c.oid), 0)
                     + coalesce((SELECT sum(pg_total_relation_size(i.relid)) FROM pg_partition_tree(c.oid) i WHERE i.relid <> c.oid), 0),
                   array_agg(a.attname ORDER BY a.attnum),
                   bool_and(a.atttypid < {FirstNormalObjectId} AND coalesce(t.typelem, 0) < {FirstNormalObjectId}),
                   pg_relation_size(c.oid, 'main') / current_setting('block_size')::bigint
              FROM (SELECT DISTINCT schemaname, tablename FROM pg_publication_tables WHERE pubname = ANY($1)) p
              JOIN pg_namespace n ON n.nspname = p.schemaname
              JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              JOIN pg_type t ON t.oid = a.atttypid
             WHERE n.nspname <> 'navette'
             GROUP BY n.nspname, c.relname, c.relkind, c.oid
             ORDER BY 4 DESC, 1, 2
            """, conn);
        cmd.Parameters.AddWithValue(publications.ToArray());
        var result = new List<CopyTable>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            result.Add(new CopyTable(r.GetString(0), r.GetString(1), r.GetFieldValue<string[]>(4), r.GetBoolean(5), r.GetBoolean(2), Convert.ToInt64(r.GetValue(3)), r.GetInt64(6)));
        return result;
    }
}
