using Microsoft.Extensions.Logging;
using Npgsql;

namespace Navette.Roles;

/// <summary>
/// Opens and closes a database to its clients' writes: <c>ALTER DATABASE ... SET default_transaction_read_only = on</c>,
/// which every new session takes (navette's own sessions override it, see <see cref="Config.NodeConfig.WritableOption"/>),
/// and for the sessions already there, a wait then <c>pg_terminate_backend</c>: their settings were read when they
/// connected, so they would keep writing.
/// </summary>
internal static class WriteGate
{
    /// <summary>application_name of navette's own sessions, which are never terminated.</summary>
    public const string ApplicationName = "navette_roles";

    /// <summary>Whether new sessions of the connection's database start read-only (the database's own setting).</summary>
    public static async Task<bool> IsClosedAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s, unnest(s.setconfig) AS c(setting)
                            WHERE s.setrole = 0 AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
                              AND lower(c.setting) ~ '^default_transaction_read_only=(on|true|yes|1|t|y)$')
            """, conn);
        return await cmd.ExecuteScalarAsync(ct) is true;
    }

    /// <summary>Makes new sessions read-only; returns the server's time once that is committed.</summary>
    public static async Task<DateTime> CloseAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using (var cmd = new NpgsqlCommand($"ALTER DATABASE {Sql.Ident(conn.Database!)} SET default_transaction_read_only = on", conn))
            await cmd.ExecuteNonQueryAsync(ct);
        await using var now = new NpgsqlCommand("SELECT clock_timestamp()", conn);
        return (DateTime)(await now.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Lets new sessions write again (nothing to do when the database was not closed).</summary>
    public static async Task OpenAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"ALTER DATABASE {Sql.Ident(conn.Database!)} RESET default_transaction_read_only", conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>What happened to the sessions that were there when the database was closed.</summary>
    internal sealed record Drained(int Idle, int Finished, int Terminated);

    /// <summary>
    /// Ends the client sessions of the database that started before <paramref name="closedAt"/> (they may still write):
    /// idle ones at once (they hold no transaction), those inside a transaction once it ends, or at the end of
    /// <paramref name="grace"/>. Returns when none is left.
    /// </summary>
    public static async Task<Drained> DrainAsync(NpgsqlConnection conn, DateTime closedAt, TimeSpan grace, ILogger log, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + grace;
        var inTransaction = new HashSet<int>();
        int idle = 0, finished = 0, terminated = 0;
        while (true)
        {
            var sessions = new List<(int Pid, bool InTransaction, string Who)>();
            await using (var cmd = new NpgsqlCommand("""
                SELECT pid, xact_start IS NOT NULL, coalesce(nullif(usename, ''), '?') || coalesce(' from ' || host(client_addr), '') || coalesce(' (' || nullif(application_name, '') || ')', '')
                  FROM pg_stat_activity
                 WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                   AND backend_start < $1 AND application_name NOT LIKE 'navette%'
                """, conn))
            {
                cmd.Parameters.AddWithValue(closedAt);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct)) sessions.Add((r.GetInt32(0), r.GetBoolean(1), r.GetString(2)));
            }
            if (sessions.Count == 0)
                return new Drained(idle, finished, terminated);
            var late = DateTime.UtcNow >= deadline;
            foreach (var (pid, busy, who) in sessions)
            {
                if (busy && !late)
                {
                    inTransaction.Add(pid);
                    continue;
                }
                await using var kill = new NpgsqlCommand("SELECT pg_terminate_backend($1)", conn);
                kill.Parameters.AddWithValue(pid);
                await kill.ExecuteNonQueryAsync(ct);
                if (busy)
                {
                    terminated++;
                    log.LogWarning("session {Pid} of {Who} was still in a transaction after the grace of {Grace:F1} s; terminated (its transaction is rolled back)", pid, who, grace.TotalSeconds);
                }
                else if (inTransaction.Remove(pid)) finished++;
                else idle++;
            }
            await Task.Delay(20, ct);
        }
    }

    /// <summary>Closes the database and drains its sessions: after this, only navette's sessions can write there.</summary>
    public static async Task<(DateTime ClosedAt, Drained Sessions)> CloseAndDrainAsync(NpgsqlConnection conn, TimeSpan grace, ILogger log, CancellationToken ct)
    {
        var closedAt = await CloseAsync(conn, ct);
        return (closedAt, await DrainAsync(conn, closedAt, grace, log, ct));
    }
}
