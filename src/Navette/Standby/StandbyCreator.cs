using System.Diagnostics;
using System.Globalization;
using Navette.Config;
using Navette.Processes;
using Npgsql;

namespace Navette.Standby;

/// <summary>What <c>navette standby create</c> was asked for: the standby as it will be recorded, and how to get there.</summary>
internal sealed record StandbyCreateRequest(
    StandbyConfig Standby,
    double? ArchiveTimeoutSeconds,
    bool RestartPrimary,
    double RestoreMaxWaitSeconds);

/// <summary>
/// <c>navette standby create</c>: checks everything first (the file, the data directory, the port, the primary's
/// settings and rights), then sets up archiving on the primary if needed, takes a base backup (pg_basebackup),
/// configures recovery, starts the standby and records it in the configuration file.
/// </summary>
internal sealed class StandbyCreator(NavetteConfig config, Action<string> say)
{
    public const double DefaultRestoreMaxWait = 60;

    public async Task<StandbyConfig> RunAsync(StandbyCreateRequest q, CancellationToken ct)
    {
        LocalServer.RequireTools();
        var standby = q.Standby with { PgData = q.Standby.PgData.TrimEnd('/'), Archive = q.Standby.Archive?.TrimEnd('/') };
        var primary = CheckConfig(standby);
        // The file as it will be must be valid: names, paths, ports, slot names are checked there, in one place.
        await ConfigFileEditor.CheckAsync(config.SourcePath, text => ConfigFileEditor.SetStandby(text, config.SourcePath, standby),
            $"standby {standby.Name} cannot be added to {config.SourcePath}", ct);
        CheckDataDirectory(standby.PgData);
        if (await PgProcesses.IsPortAcceptingAsync(standby.Port, ct))
            throw new NavetteException($"port {standby.Port} is already in use on this machine; choose another --port");

        var conn = new NpgsqlConnection(primary.ToNpgsqlConnectionString());
        try
        {
            await conn.OpenAsync(ct);
            var facts = await PrimaryFacts.ReadAsync(conn, ct);
            var slotExists = await CheckPrimaryAsync(primary, facts, standby, conn, ct);
            if (standby.Mode == StandbyMode.Archive)
            {
                var archiving = PrimaryArchiving.Plan(primary, facts, standby.Archive!, q.ArchiveTimeoutSeconds, q.RestartPrimary, say);
                await PrepareArchiveFolderAsync(standby.Archive!, ct);
                conn = await archiving.ApplyAsync(conn, ct);
                await archiving.VerifyAsync(conn, facts, ct);
            }

            await BaseBackupAsync(primary, standby, slotExists, conn, ct);
            await ServerConfigFiles.CopyMissingAsync(facts, standby.PgData, say, ct);
            await ConfigureRecoveryAsync(primary, standby, q.RestoreMaxWaitSeconds, facts["port"], ct);

            var server = new LocalServer(standby.PgData);
            try
            {
                await server.StartAsync(ct);
            }
            catch (NavetteException e)
            {
                throw new NavetteException($"standby {standby.Name} did not start; its data directory {standby.PgData} is left for a look at its log "
                    + $"(remove it{(standby.Slot ? $", and the slot {standby.SlotName} on {primary.Name}," : "")} before trying again): {e.Message}");
            }

            say($"standby {standby.Name} started from {standby.PgData} on port {standby.Port}");
            var recorded = await ConfigFileEditor.UpdateAsync(config.SourcePath, text => ConfigFileEditor.SetStandby(text, config.SourcePath, standby), ct);
            say($"recorded standby {standby.Name} in {config.SourcePath}");
            await StandbyProbe.WaitForWalAsync(primary, recorded.Standbys[standby.Name], conn, say, ct);
            return recorded.Standbys[standby.Name];
        }
        finally
        {
            await conn.DisposeAsync();
        }
    }

    private NodeConfig CheckConfig(StandbyConfig standby)
    {
        var problems = ConfigLoader.NameProblems("standby", standby.Name).ToList();
        if (problems.Count > 0)
            throw new NavetteException(string.Join("; ", problems));
        if (config.Standbys.TryGetValue(standby.Name, out var existing))
        {
            throw new NavetteException($"standby '{standby.Name}' already exists in {config.SourcePath} (line {existing.Line}); choose another name, "
                + "or remove its entry and its data directory first");
        }

        if (!config.Nodes.TryGetValue(standby.From, out var primary))
        {
            throw new NavetteException($"unknown node '{standby.From}' in --from; nodes in {config.SourcePath}: {string.Join(", ", config.Nodes.Keys)}"
                + ConfigLoader.Suggestion(standby.From, config.Nodes.Keys));
        }

        return primary;
    }

    private static void CheckDataDirectory(string pgdata)
    {
        if (File.Exists(pgdata))
            throw new NavetteException($"--pgdata {pgdata} is a file; give a new or empty directory");
        if (Directory.Exists(pgdata) && Directory.EnumerateFileSystemEntries(pgdata).Any())
            throw new NavetteException($"--pgdata {pgdata} is not empty; give a new or empty directory (navette never writes over an existing one)");
    }

    private static async Task PrepareArchiveFolderAsync(string archive, CancellationToken ct)
    {
        if (Directory.Exists(archive))
            return;
        Directory.CreateDirectory(archive);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(archive, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await PosixUser.GiveToPostgresAsync(archive, ct);
    }

    /// <summary>Everything the base backup and the standby need from the primary; returns whether the slot already exists.</summary>
    private async Task<bool> CheckPrimaryAsync(NodeConfig primary, PrimaryFacts facts, StandbyConfig standby, NpgsqlConnection conn, CancellationToken ct)
    {
        var problems = new List<string>();
        var major = facts.Int("server_version_num") / 10000;
        if (facts.InRecovery)
            problems.Add($"node {primary.Name} is itself a standby (in recovery); make the standby from its primary (cascading standbys are not supported)");
        if (major != PgBinaries.MajorVersion)
            problems.Add($"node {primary.Name} runs PostgreSQL {major} but the binaries here are PostgreSQL {PgBinaries.MajorVersion} ({PgBinaries.BinDir}); a physical standby needs the same major version: install it, or point {PgBinaries.EnvVar} at its bin folder");
        if (facts["wal_level"] == "minimal")
            problems.Add($"node {primary.Name} has wal_level = minimal; a standby needs replica or logical: ALTER SYSTEM SET wal_level = replica, then restart it");
        if (!facts.Superuser && !facts.Replication)
            problems.Add($"role {facts.User} on node {primary.Name} may not take base backups or stream WAL: ALTER ROLE {Sql.Ident(facts.User)} REPLICATION (and allow it in pg_hba.conf's 'replication' lines)");
        if (facts.Int("max_wal_senders") - facts.SendersInUse < 2)
            problems.Add($"node {primary.Name} has max_wal_senders = {facts.Int("max_wal_senders")} with {facts.SendersInUse} in use; the base backup needs 2 and a streaming standby 1: raise it (ALTER SYSTEM, then restart)");
        if (facts.Tablespaces.Count > 0)
            problems.Add($"node {primary.Name} has tablespaces outside its data directory ({string.Join(", ", facts.Tablespaces)}); a standby on this machine would need them at other paths, which navette does not map: use pg_basebackup --tablespace-mapping yourself");

        var slotExists = false;
        if (standby.Slot)
        {
            await using var cmd = new NpgsqlCommand("SELECT slot_type, active FROM pg_replication_slots WHERE slot_name = $1", conn);
            cmd.Parameters.AddWithValue(standby.SlotName);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (await r.ReadAsync(ct))
            {
                slotExists = true;
                if (r.GetString(0) != "physical")
                    problems.Add($"node {primary.Name} has a {r.GetString(0)} slot named {standby.SlotName}; drop it or name the standby differently");
                else if (r.GetBoolean(1))
                    problems.Add($"slot {standby.SlotName} on node {primary.Name} is in use by another server; is standby {standby.Name} already running elsewhere?");
                else
                    say($"node {primary.Name}: reusing the existing slot {standby.SlotName}");
            }
            else if (facts.Int("max_replication_slots") - facts.SlotsInUse < 1)
            {
                problems.Add($"node {primary.Name} has max_replication_slots = {facts.Int("max_replication_slots")}, all in use; raise it (ALTER SYSTEM, then restart)");
            }
        }

        if (problems.Count > 0)
            throw new NavetteException(string.Join("\n", problems));
        return slotExists;
    }

    private async Task BaseBackupAsync(NodeConfig primary, StandbyConfig standby, bool slotExists, NpgsqlConnection conn, CancellationToken ct)
    {
        Directory.CreateDirectory(standby.PgData);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(standby.PgData, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await PosixUser.GiveToPostgresAsync(standby.PgData, ct);

        var args = new List<string> { "-D", standby.PgData, "-X", "stream", "-c", "fast", "-w" };
        if (standby.Slot)
        {
            args.AddRange(["-S", standby.SlotName]);
            if (!slotExists)
                args.Add("-C");
        }

        say($"base backup of node {primary.Name} into {standby.PgData} (pg_basebackup -X stream{(standby.Slot ? ", slot " + standby.SlotName : "")})");
        var clock = Stopwatch.StartNew();
        var result = await LocalServer.RunClientToolAsync("pg_basebackup", "-d", StandbyConnInfo.ToPrimary(primary, "navette basebackup " + standby.Name), args, ct);
        if (!result.Succeeded)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(standby.PgData))
            {
                if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
                else File.Delete(entry);
            }

            if (standby.Slot && !slotExists)
                await DropSlotQuietlyAsync(conn, standby.SlotName, ct);
            var hint = result.StdErr.Contains("pg_hba.conf", StringComparison.Ordinal)
                ? $" (node {primary.Name}'s pg_hba.conf needs a 'replication' line for this host and role)" : string.Empty;
            throw new NavetteException($"pg_basebackup from node {primary.Name} failed{hint}: {ConnInfo.ScrubSecrets(result.CombinedOutput, primary.ConnInfo)}");
        }

        // Files of the primary's that must not look like the standby's own.
        foreach (var name in new[] { LocalServer.LogFileName, RestoreProgress.FileName, "standby.signal", "recovery.signal", WalRestorer.PromoteSignalFile })
            File.Delete(Path.Combine(standby.PgData, name));
        say($"base backup done in {clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s");
    }

    private static async Task DropSlotQuietlyAsync(NpgsqlConnection conn, string slot, CancellationToken ct)
    {
        try
        {
            await PgQuery.ExecAsync(conn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", ct, slot);
        }
        catch (NpgsqlException)
        {
        }
    }

    private async Task ConfigureRecoveryAsync(NodeConfig primary, StandbyConfig standby, double restoreMaxWait, string? primaryPort, CancellationToken ct)
    {
        await StandbySettings.WriteAsync(primary, standby, restoreMaxWait,
            [new("port", standby.Port.ToString(CultureInfo.InvariantCulture))],
            $"navette standby create: standby {standby.Name} of node {primary.Name} (the primary's port was {primaryPort ?? "?"})", ct);
        say($"recovery configured: {Describe(standby)}");
    }

    internal static string Describe(StandbyConfig s)
    {
        var parts = new List<string>
        {
            s.Mode == StandbyMode.Streaming ? $"streaming from {s.From}" : $"restoring {s.From}'s WAL from {s.Archive}",
            s.Hot ? "hot (read-only queries)" : "not hot (no queries)",
        };
        if (s.Slot) parts.Add("slot " + s.SlotName);
        if (s.Mode == StandbyMode.Streaming && s.Archive is not null) parts.Add("falls back on " + s.Archive);
        if (s.Delay is not null) parts.Add("applies " + s.Delay + " late");
        return string.Join(", ", parts);
    }
}
