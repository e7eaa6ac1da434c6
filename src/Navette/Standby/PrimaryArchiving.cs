using System.Diagnostics;
using System.Globalization;
using Navette.Config;
using Navette.Processes;
using Npgsql;

namespace Navette.Standby;

/// <summary>
/// WAL archiving on a primary for a warm standby: archive_mode (a restart), archive_command (navette wal-archive into
/// the archive folder) and archive_timeout (the longest a committed transaction waits before its segment is archived,
/// i.e. the data-loss window). Everything is checked before anything changes; a restart is only done when asked.
/// </summary>
internal sealed class PrimaryArchiving
{
    public const int DefaultTimeoutSeconds = 60;
    private static readonly TimeSpan VerifyTimeout = TimeSpan.FromSeconds(60);

    private readonly NodeConfig _node;
    private readonly string _archive;
    private readonly List<KeyValuePair<string, string>> _changes = [];
    private readonly Action<string> _say;
    private readonly string? _dataDirectory;

    private PrimaryArchiving(NodeConfig node, string archive, Action<string> say, string? dataDirectory)
    {
        _node = node;
        _archive = archive;
        _say = say;
        _dataDirectory = dataDirectory;
    }

    public bool NeedsRestart { get; private set; }

    /// <summary>Decides what to change on the primary; throws with what the operator must do when navette may not do it.</summary>
    public static PrimaryArchiving Plan(NodeConfig node, PrimaryFacts facts, string archive, double? timeoutSeconds, bool restartAllowed, Action<string> say)
    {
        var plan = new PrimaryArchiving(node, archive, say, facts["data_directory"]);
        var command = facts["archive_command"] ?? string.Empty;
        var library = facts["archive_library"] ?? string.Empty;
        if (library.Length > 0)
        {
            say($"node {node.Name} archives through archive_library '{library}'; navette leaves it and checks that WAL files reach {archive}");
        }
        else if (command.Length == 0)
        {
            plan._changes.Add(new("archive_command", NavetteInvocation.ArchiveCommand(archive)));
        }
        else if (NavetteInvocation.IsOurArchiveCommand(command, out var current))
        {
            if (current != archive)
            {
                throw new NavetteException($"node {node.Name} already archives into {current} (navette wal-archive); standbys of one primary share its archive: "
                    + $"use --archive {current}, or change archive_command on {node.Name} first");
            }
        }
        else
        {
            say($"node {node.Name} already has an archive_command (not navette's); navette leaves it and checks that it puts WAL files into {archive}");
        }

        var timeout = facts.Int("archive_timeout");
        if (timeoutSeconds is { } wanted && (int)Math.Round(wanted) != timeout)
            plan._changes.Add(new("archive_timeout", ((int)Math.Round(wanted)).ToString(CultureInfo.InvariantCulture) + "s"));
        else if (timeoutSeconds is null && timeout == 0)
            plan._changes.Add(new("archive_timeout", DefaultTimeoutSeconds.ToString(CultureInfo.InvariantCulture) + "s"));

        if (facts["archive_mode"] == "off")
        {
            plan.NeedsRestart = true;
            var where = facts["data_directory"] is { } dd ? $" (pg_ctl restart -m fast -D {dd}, on this machine)" : string.Empty;
            if (!restartAllowed)
            {
                throw new NavetteException($"node {node.Name} has archive_mode = off, and turning it on takes a restart of {node.Name}; nothing was changed. "
                    + $"Either let navette do it: add --restart-primary (ALTER SYSTEM SET archive_mode = on, then a fast restart{where}: "
                    + $"clients are disconnected for a few seconds), or do it yourself: ALTER SYSTEM SET archive_mode = on; restart {node.Name} "
                    + "(e.g. systemctl restart postgresql, pg_ctlcluster 15 main restart); then run this command again");
            }

            if (facts["data_directory"] is not { } dataDir || !new LocalServer(dataDir).IsRunning)
            {
                throw new NavetteException($"node {node.Name} has archive_mode = off, which takes a restart, and navette can only restart a primary whose data directory "
                    + $"is on this machine{(facts["data_directory"] is { } d ? $" ({d} is not, or no server runs from it)" : " (the role may not read data_directory)")}; "
                    + $"run ALTER SYSTEM SET archive_mode = on on {node.Name}, restart it, then run this command again");
            }

            plan._changes.Add(new("archive_mode", "on"));
        }

        return plan;
    }

    /// <summary>Applies the plan (ALTER SYSTEM, reload, restart if planned); returns an open connection to the primary.</summary>
    public async Task<NpgsqlConnection> ApplyAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        foreach (var (name, value) in _changes)
        {
            await PgQuery.ExecAsync(conn, $"ALTER SYSTEM SET {name} = {Sql.Literal(value)}", ct);
            _say($"node {_node.Name}: {name} = {(name == "archive_command" ? value : Sql.Literal(value))}");
        }

        if (_changes.Count > 0)
            await PgQuery.ExecAsync(conn, "SELECT pg_reload_conf()", ct);
        if (!NeedsRestart)
            return conn;

        await conn.DisposeAsync();
        _say($"node {_node.Name}: restarting it for archive_mode = on ({_dataDirectory})");
        await new LocalServer(_dataDirectory!).RestartAsync(ct);
        var reopened = new NpgsqlConnection(_node.ToNpgsqlConnectionString());
        await reopened.OpenAsync(ct);
        return reopened;
    }

    /// <summary>
    /// Forces a segment switch and waits for that segment in the archive, which proves archive_command works end to end
    /// (the command runs, as the server's OS user, and can write into the folder). Needs the right to call pg_switch_wal().
    /// </summary>
    public async Task VerifyAsync(NpgsqlConnection conn, PrimaryFacts facts, CancellationToken ct)
    {
        string segment;
        try
        {
            // Something must be in the current segment, or the switch does nothing.
            await PgQuery.ExecAsync(conn, "SELECT pg_logical_emit_message(false, 'navette', 'archive check')", ct);
            segment = (await PgQuery.ScalarAsync<string>(conn, "SELECT pg_walfile_name(pg_switch_wal())", ct))!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            _say($"node {_node.Name}: role {facts.User} may not call pg_switch_wal(), so archiving into {_archive} is not checked now; watch navette standby status");
            return;
        }

        var clock = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(_archive, segment)))
        {
            if (clock.Elapsed > VerifyTimeout)
            {
                var failed = await PgQuery.ScalarAsync<string>(conn,
                    "SELECT coalesce(last_failed_wal || ' at ' || last_failed_time, 'none') FROM pg_stat_archiver", ct);
                throw new NavetteException($"node {_node.Name}: WAL file {segment} did not reach {_archive} within {VerifyTimeout.TotalSeconds:F0} s (last failed archive: {failed}); "
                    + $"check archive_command on {_node.Name} and its server log (the command runs as the server's OS user{(PosixUser.IsRoot ? ", " + PosixUser.PostgresUser : "")}, which must be able to write into {_archive}). "
                    + $"The settings changed above stay on {_node.Name}; no standby was made");
            }

            await Task.Delay(200, ct);
        }

        _say($"node {_node.Name}: archiving works ({segment} reached {_archive})");
    }
}
