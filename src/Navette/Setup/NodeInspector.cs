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

    public static async Task<List<(string Schema, string Name)>> SequencesAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname <> 'navette'", conn);
        var result = new List<(string, string)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add((r.GetString(0), r.GetString(1)));
        return result;
    }

    /// <summary>The functions navette's apply, copy, resync and apply call on a target, by signature.</summary>
    internal static readonly string[] ApplyFunctions =
    [
        "pg_replication_origin_create(text)", "pg_replication_origin_drop(text)", "pg_replication_origin_session_setup(text)",
        "pg_replication_origin_session_reset()", "pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone)",
        "pg_replication_origin_progress(text, boolean)", "pg_replication_origin_advance(text, pg_lsn)", "pg_replication_origin_oid(text)",
    ];

    /// <summary>
    /// What a role that is not a superuser lacks to apply changes on a target, each as the statement that grants it
    /// (<c>{role}</c> stands for the role): SET on session_replication_role (grantable since PostgreSQL 15) and EXECUTE
    /// on the replication origin functions. Empty when it has them all.
    /// </summary>
    public static async Task<List<string>> MissingApplyGrantsAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var missing = new List<string>();
        await using (var cmd = new NpgsqlCommand("SELECT has_parameter_privilege('session_replication_role', 'SET')", conn))
            if (await cmd.ExecuteScalarAsync(ct) is not true)
                missing.Add("GRANT SET ON PARAMETER session_replication_role TO {role}");
        var functions = new List<string>();
        foreach (var f in ApplyFunctions)
        {
            await using var cmd = new NpgsqlCommand("SELECT has_function_privilege($1, 'EXECUTE')", conn);
            cmd.Parameters.AddWithValue("pg_catalog." + f);
            if (await cmd.ExecuteScalarAsync(ct) is not true) functions.Add("pg_catalog." + f);
        }
        if (functions.Count > 0)
            missing.Add($"GRANT EXECUTE ON FUNCTION {string.Join(", ", functions)} TO {{role}}");
        return missing;
    }

    public static async Task<bool> CanCreateInSchemaAsync(NpgsqlConnection conn, string schema, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT has_schema_privilege($1, 'CREATE')", conn);
        cmd.Parameters.AddWithValue(schema);
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <summary>The owner of the table when the current role does not have its rights (neither owner nor member), else null.</summary>
    public static async Task<(string Name, bool Super)?> TableOwnerUnlessOwnedAsync(NpgsqlConnection conn, string schema, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT r.rolname, r.rolsuper FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner
             WHERE n.nspname = $1 AND c.relname = $2 AND NOT pg_has_role(c.relowner, 'USAGE')
            """, conn);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(name);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetString(0), r.GetBoolean(1)) : null;
    }

    public static async Task<List<SourceTable>> TablesAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT n.nspname, c.relname, c.relkind, c.relpersistence, c.relreplident,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident),
                   pg_has_role(c.relowner, 'USAGE'), has_table_privilege(c.oid, 'SELECT')
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'navette')
               AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
             ORDER BY 1, 2
            """, conn);
        var result = new List<SourceTable>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            result.Add(new SourceTable(r.GetString(0), r.GetString(1), r.GetChar(2), r.GetChar(3), r.GetChar(4), r.GetBoolean(5), r.GetBoolean(6),
                r.GetBoolean(7), r.GetBoolean(8)));
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
            "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name LIKE 'navette\\_%' AND database = current_database() AND NOT temporary", conn);
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

    public static async Task<bool> HasRowsAsync(NpgsqlConnection conn, SourceTable table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM {table.QualifiedName})", conn);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The navette catalog version installed on the node, or null when there is none.</summary>
    public static async Task<int?> CatalogVersionAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using (var cmd = new NpgsqlCommand("SELECT to_regclass('navette.schema_version') IS NOT NULL", conn))
            if (!(bool)(await cmd.ExecuteScalarAsync(ct))!) return null;
        await using (var cmd = new NpgsqlCommand("SELECT max(version) FROM navette.schema_version", conn))
            return await cmd.ExecuteScalarAsync(ct) is int v ? v : null;
    }

    /// <summary>The subscriptions registered on a target (empty when the catalog is not installed).</summary>
    public static async Task<Dictionary<string, (string OriginNode, string State)>> RegisteredSubscriptionsAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var result = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        await using (var check = new NpgsqlCommand("SELECT to_regclass('navette.subscription') IS NOT NULL", conn))
            if (!(bool)(await check.ExecuteScalarAsync(ct))!) return result;
        await using var cmd = new NpgsqlCommand("SELECT name, origin_node, state FROM navette.subscription", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result[r.GetString(0)] = (r.GetString(1), r.GetString(2));
        return result;
    }

    /// <summary>True when the replication origin exists and records applied progress (needs a superuser).</summary>
    public static async Task<bool> HasProgressAsync(NpgsqlConnection conn, string origin, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT coalesce((SELECT pg_replication_origin_progress(roname, false) FROM pg_replication_origin WHERE roname = $1), '0/0') <> '0/0'
            """, conn);
        cmd.Parameters.AddWithValue(origin);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// Why a replication origin is held by another session (PostgreSQL's words, with its PID), or null when it is free.
    /// Probes by setting the origin up in this session and resetting it at once (needs a superuser).
    /// </summary>
    public static async Task<string?> OriginInUseAsync(NpgsqlConnection conn, string origin, CancellationToken ct)
    {
        try
        {
            await using (var setup = new NpgsqlCommand("SELECT pg_replication_origin_session_setup($1)", conn))
            {
                setup.Parameters.AddWithValue(origin);
                await setup.ExecuteNonQueryAsync(ct);
            }
            await using (var reset = new NpgsqlCommand("SELECT pg_replication_origin_session_reset()", conn))
                await reset.ExecuteNonQueryAsync(ct);
            return null;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse)
        {
            return e.MessageText;
        }
        catch (PostgresException)
        {
            return null; // cannot tell (e.g. max_replication_slots = 0): dropping it will say
        }
    }

    /// <summary>Replication origins that are not navette's (built-in subscriptions, other tools).</summary>
    public static async Task<int> OtherOriginCountAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT count(*)::int FROM pg_replication_origin WHERE roname NOT LIKE 'navette\\_%'", conn);
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

    /// <summary>The key the applier matches rows on (replica identity index, else primary key); empty without one; null when the table is missing.</summary>
    public static async Task<string[]?> KeyColumnsAsync(NpgsqlConnection conn, SourceTable table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT c.oid IS NOT NULL, array_remove(array_agg(a.attname ORDER BY k.ord), NULL)
              FROM (SELECT to_regclass(format('%I.%I', $1::text, $2::text)) AS oid) c
              LEFT JOIN LATERAL (
                  SELECT i.indexrelid, i.indkey FROM pg_index i
                   WHERE i.indrelid = c.oid AND (i.indisreplident OR (i.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_index j WHERE j.indrelid = c.oid AND j.indisreplident)))
                   LIMIT 1) i ON true
              LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
              LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             GROUP BY c.oid
            """, conn);
        cmd.Parameters.AddWithValue(table.Schema);
        cmd.Parameters.AddWithValue(table.Name);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct) || !r.GetBoolean(0)) return null;
        return r.GetFieldValue<string[]>(1);
    }

}
