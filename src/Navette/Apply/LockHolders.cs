using Npgsql;

namespace Navette.Apply;

/// <summary>
/// Who holds the locks an apply statement waited for past <c>apply_timeout</c>: read on a session of its own right after
/// PostgreSQL cancelled the statement (55P03), while the other session still holds them, so the error names what to end.
/// </summary>
internal static class LockHolders
{
    public static bool IsLockTimeout(Exception e) =>
        (e as PostgresException ?? e.InnerException as PostgresException)?.SqlState == PostgresErrorCodes.LockNotAvailable;

    /// <summary>
    /// The sessions other than navette's own that hold a lock on one of <paramref name="tables"/> (schema, name), one
    /// phrase each, or an empty string when none is seen any more (or the target cannot be asked).
    /// </summary>
    public static async Task<string> DescribeAsync(string connectionString, IReadOnlyCollection<(string Schema, string Name)> tables, CancellationToken ct)
    {
        try
        {
            var cs = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5, CommandTimeout = 5 }.ConnectionString;
            await using var conn = new NpgsqlConnection(cs);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT l.pid, n.nspname, c.relname, string_agg(DISTINCT l.mode, ', ' ORDER BY l.mode),
                       a.usename, a.application_name, a.state, a.xact_start
                  FROM pg_catalog.pg_locks l
                  JOIN pg_catalog.pg_class c ON c.oid = l.relation
                  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
                 WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_catalog.pg_backend_pid()
                   AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
                   AND (n.nspname, c.relname) IN (SELECT s, t FROM unnest($1::text[], $2::text[]) AS u(s, t))
                   AND coalesce(a.application_name, '') NOT LIKE 'navette%'
                 GROUP BY l.pid, n.nspname, c.relname, a.usename, a.application_name, a.state, a.xact_start
                 ORDER BY a.xact_start NULLS LAST, l.pid
                 LIMIT 5
                """, conn);
            cmd.Parameters.AddWithValue(tables.Select(t => t.Schema).ToArray());
            cmd.Parameters.AddWithValue(tables.Select(t => t.Name).ToArray());
            var holders = new List<string>();
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var app = r.IsDBNull(5) || r.GetString(5).Length == 0 ? "" : $", application {r.GetString(5)}";
                var state = r.IsDBNull(6) ? "" : $", {r.GetString(6)}";
                var since = r.IsDBNull(7) ? "" : $", transaction open since {r.GetDateTime(7).ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z";
                holders.Add($"pid {r.GetInt32(0)} (user {(r.IsDBNull(4) ? "?" : r.GetString(4))}{app}{state}{since}) holds {r.GetString(3)} on {r.GetString(1)}.{r.GetString(2)}");
            }
            return string.Join("; ", holders);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Best effort: the lock wait is reported either way, only without who holds the lock.
            return "";
        }
    }
}
