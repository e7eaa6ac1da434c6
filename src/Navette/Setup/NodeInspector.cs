using Npgsql;

namespace Navette.Setup;

/// <summary>Reads what a node is: settings, privileges, tables, columns, navette's own slots and origins.</summary>
internal static class NodeInspector
{
    public static async Task<Dictionary<string, string>> SettingsAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var result = new Dictionary<string, string>();
        await using var cmd = new NpgsqlCommand(
            "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders', 'track_commit_timestamp', 'server_version_num')", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result[r.GetString(0)] = r.GetString(1);
        return result;
    }

    public static async Task<(bool Super, bool Replication, bool CanCreateInDb)> RoleAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT rolsuper, rolreplication, has_database_privilege(current_database(), 'CREATE') FROM pg_roles WHERE rolname = current_user", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetBoolean(0), r.GetBoolean(1), r.GetBoolean(2));
    }

    public static async Task<List<SourceTable>> TablesAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relreplident,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'navette')
               AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
             ORDER BY 1, 2
            """, conn);
        var result = new List<SourceTable>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            result.Add(new SourceTable(r.GetString(0), r.GetString(1), r.GetChar(2), r.GetChar(3), r.GetChar(4), r.GetBoolean(5), r.GetBoolean(6)));
        return result;
    }

    /// <summary>Columns of a table, or null when the table does not exist.</summary>
    public static async Task<List<TableColumn>?> ColumnsAsync(NpgsqlConnection conn, string schema, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.atthasdef OR a.attidentity <> '', a.attgenerated <> ''
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
             ORDER BY a.attnum
            """, conn);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(table);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        List<TableColumn>? result = null;
        while (await r.ReadAsync(ct))
        {
            result ??= new List<TableColumn>();
            if (!r.IsDBNull(0))
                result.Add(new TableColumn(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetBoolean(3), r.GetBoolean(4)));
        }
        return result;
    }

    public static async Task<List<(string Name, bool Active)>> NavetteSlotsAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name LIKE 'navette\\_%' AND database = current_database()", conn);
        var result = new List<(string, bool)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add((r.GetString(0), r.GetBoolean(1)));
        return result;
    }

    public static async Task<int> SlotCountAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT count(*)::int FROM pg_replication_slots", conn);
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    public static async Task<List<string>> StringsAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        var result = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add(r.GetString(0));
        return result;
    }
}
