using System.Diagnostics;
using Npgsql;

namespace Navette.Synchronous;

/// <summary>
/// The origin's <c>synchronous_standby_names</c> as it is in effect, whether this session may change it, and the change
/// itself: <c>ALTER SYSTEM</c> then <c>pg_reload_conf()</c>, under an advisory lock so that <c>navette apply</c> and the
/// daemon's degrade guard never interleave their read-modify-write.
/// </summary>
internal sealed record StandbyNamesSetting(string Value, StandbyNames Parsed, string? ParseProblem, string Source, bool CanAlterSystem, bool CanReload, string SynchronousCommit)
{
    /// <summary>Arbitrary constant key for pg_advisory_lock: "navette synchronous_standby_names".</summary>
    private const long LockKey = 0x6E61765F73796E63; // "nav_sync"

    private static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(10);

    public bool CanChange => CanAlterSystem && CanReload;

    /// <summary>Settings given on the postmaster's command line win over ALTER SYSTEM.</summary>
    public bool Overridden => Source is "command line" or "environment variable";

    public static async Task<StandbyNamesSetting> ReadAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT current_setting('synchronous_standby_names'),
                   (SELECT source FROM pg_settings WHERE name = 'synchronous_standby_names'),
                   (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                     OR has_parameter_privilege('synchronous_standby_names', 'ALTER SYSTEM'),
                   has_function_privilege('pg_reload_conf()', 'EXECUTE'),
                   (SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit')
            """, conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var value = r.GetString(0);
        var ok = StandbyNames.TryParse(value, out var parsed, out var problem);
        return new StandbyNamesSetting(value, parsed, ok ? null : problem, r.GetString(1), r.GetBoolean(2), r.GetBoolean(3), r.GetString(4));
    }

    /// <summary>The statements that set <paramref name="value"/>, for an operator to run as a superuser.</summary>
    public static string ManualStatement(StandbyNames value) =>
        $"ALTER SYSTEM SET synchronous_standby_names = {Sql.Literal(value.Format())}; SELECT pg_reload_conf();";

    /// <summary>The postgresql.conf line for <paramref name="value"/>.</summary>
    public static string ConfLine(StandbyNames value) => $"synchronous_standby_names = {Sql.Literal(value.Format())}";

    /// <summary>
    /// Reads the setting under the lock, lets <paramref name="change"/> compute the new value from it (null: leave it),
    /// writes and reloads, and waits until a session sees the new value. Returns (before, after), after being null when
    /// nothing was written.
    /// </summary>
    public static async Task<(StandbyNamesSetting Before, StandbyNames? After)> ChangeAsync(
        NpgsqlConnection conn, Func<StandbyNamesSetting, StandbyNames?> change, CancellationToken ct)
    {
        await ExecAsync(conn, $"SELECT pg_advisory_lock({LockKey})", ct);
        try
        {
            var before = await ReadAsync(conn, ct);
            var after = change(before);
            if (after is null || (before.ParseProblem is null && after.SameAs(before.Parsed)))
                return (before, null);
            // ALTER SYSTEM takes no parameters: the value goes in as a quoted literal.
            await ExecAsync(conn, $"ALTER SYSTEM SET synchronous_standby_names = {Sql.Literal(after.Format())}", ct);
            await ExecAsync(conn, "SELECT pg_reload_conf()", ct);
            await WaitInEffectAsync(conn, after, ct);
            return (before, after);
        }
        finally
        {
            await ExecAsync(conn, $"SELECT pg_advisory_unlock({LockKey})", CancellationToken.None);
        }
    }

    /// <summary>
    /// pg_reload_conf() only signals the postmaster; a session takes the new value when it next reads its configuration
    /// (between statements). Polls until it shows, or names the source that overrides ALTER SYSTEM.
    /// </summary>
    private static async Task WaitInEffectAsync(NpgsqlConnection conn, StandbyNames expected, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var now = await ReadAsync(conn, ct);
            if (now.ParseProblem is null && now.Parsed.SameAs(expected)) return;
            if (clock.Elapsed > ApplyTimeout)
                throw new NavetteException($"synchronous_standby_names was set to '{expected.Format()}' with ALTER SYSTEM but is still '{now.Value}' after reload "
                                           + $"(its source is '{now.Source}', which takes precedence over postgresql.auto.conf); set it there instead");
            await Task.Delay(20, ct);
        }
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
