using System.Globalization;
using Navette.Config;
using Navette.Processes;
using Npgsql;

namespace Navette.Standby;

/// <summary>What <c>navette standby rewind</c> was asked for.</summary>
internal sealed record StandbyRewindRequest(
    string Name,
    string From,
    string? PgData,
    bool Hot,
    bool Slot,
    string? Archive,
    string? Delay);

/// <summary>
/// <c>navette standby rewind OLD --from NEW</c>: turns a former primary into a streaming standby of the server that
/// replaced it, without a new base backup. It stops OLD cleanly, rewinds its data directory to where the two diverged
/// (pg_rewind against NEW; what OLD committed after that point is discarded, as it is not on NEW), keeps OLD's own
/// configuration files, writes standby.signal and primary_conninfo, starts it, and records OLD as a standby of NEW.
/// </summary>
internal sealed class StandbyRewinder(NavetteConfig config, Action<string> say)
{
    /// <summary>pg_rewind copies these from the source; the rewound server keeps its own.</summary>
    private static readonly string[] OwnFiles = ["postgresql.conf", ServerConf.AutoConfFile, "pg_hba.conf", "pg_ident.conf"];

    public async Task<StandbyConfig> RunAsync(StandbyRewindRequest q, CancellationToken ct)
    {
        LocalServer.RequireTools();
        var (old, source) = CheckConfig(q);
        var (pgdata, port) = await LocateAsync(old, q.PgData, ct);
        var server = new LocalServer(pgdata);
        if (!server.IsDataDirectory)
            throw new NavetteException($"node {old.Name}: no data directory at {pgdata} on this machine; run navette where it is, or pass --pgdata");
        var host = ConnInfo.Parse(old.ConnInfo).LastOrDefault(p => p.Key == "host").Value?.Split(',')[0] is { Length: > 0 } h ? h : StandbyConfig.DefaultHost;
        var standby = new StandbyConfig(old.Name, source.Name, pgdata, port, host, StandbyMode.Streaming, q.Hot, q.Slot, q.Archive?.TrimEnd('/'), q.Delay, 0);
        string Edit(string text) => ConfigFileEditor.SetStandby(ConfigFileEditor.RemoveNode(text, config.SourcePath, old.Name), config.SourcePath, standby);
        await ConfigFileEditor.CheckAsync(config.SourcePath, Edit, $"node {old.Name} cannot become a standby in {config.SourcePath}", ct);

        await CheckRewindableAsync(server, old, ct);
        await using var conn = await StandbyConnInfo.OpenAsync(source.ConnInfo, ct);
        await CheckSourceAsync(conn, source, standby, ct);

        if (server.IsRunning)
        {
            say($"stopping node {old.Name} (fast shutdown of {pgdata}); whatever it committed after it and {source.Name} diverged is discarded by the rewind");
            await server.StopAsync(ct);
        }

        var saved = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in OwnFiles.Where(f => File.Exists(Path.Combine(pgdata, f))))
            saved[f] = await File.ReadAllTextAsync(Path.Combine(pgdata, f), ct);
        var ownArchive = await OwnArchiveAsync(pgdata, ct);
        await RewindAsync(pgdata, old, source, ownArchive, ct);
        foreach (var (f, text) in saved)
            await ServerConf.WriteOwnedAsync(Path.Combine(pgdata, f), text, ct);
        RemoveLeftovers(pgdata, source.Name);

        await StandbySettings.WriteAsync(source, standby, StandbyCreator.DefaultRestoreMaxWait,
            [new("port", port.ToString(CultureInfo.InvariantCulture))],
            $"navette standby rewind: {old.Name} follows node {source.Name}", ct);
        say($"recovery configured: {StandbyCreator.Describe(standby)}");
        await server.StartAsync(ct);
        say($"node {old.Name} started as a standby of {source.Name} on port {port}");

        var recorded = await ConfigFileEditor.UpdateAsync(config.SourcePath, Edit, ct);
        say($"recorded {old.Name} as a standby of {source.Name} in {config.SourcePath} (its node entry is gone)");
        await StandbyProbe.WaitForWalAsync(source, recorded.Standbys[old.Name], conn, say, ct);
        return recorded.Standbys[old.Name];
    }

    private (NodeConfig Old, NodeConfig Source) CheckConfig(StandbyRewindRequest q)
    {
        if (!config.Nodes.TryGetValue(q.Name, out var old))
        {
            throw new NavetteException(config.Standbys.ContainsKey(q.Name)
                ? $"'{q.Name}' is already a standby in {config.SourcePath}"
                : $"unknown node '{q.Name}'; nodes in {config.SourcePath}: {string.Join(", ", config.Nodes.Keys)}" + ConfigLoader.Suggestion(q.Name, config.Nodes.Keys));
        }

        if (!config.Nodes.TryGetValue(q.From, out var source))
            throw new NavetteException($"unknown node '{q.From}' in --from; nodes in {config.SourcePath}: {string.Join(", ", config.Nodes.Keys)}" + ConfigLoader.Suggestion(q.From, config.Nodes.Keys));
        if (old.Name == source.Name)
            throw new NavetteException($"--from must name the new primary, not {q.Name} itself");

        var users = config.Subscriptions.Values.Where(s => s.From == old.Name || s.To == old.Name).Select(s => s.Name).ToList();
        if (users.Count > 0)
        {
            throw new NavetteException($"node {old.Name} is used by subscriptions {string.Join(", ", users)}; as a standby it could neither publish nor apply changes. "
                + $"Point them at {source.Name} (or remove them) in {config.SourcePath} first");
        }

        var followers = config.Standbys.Values.Where(s => s.From == old.Name).Select(s => s.Name).ToList();
        if (followers.Count > 0)
        {
            throw new NavetteException($"standbys {string.Join(", ", followers)} follow node {old.Name}, and cascading standbys are not supported; "
                + "promote, re-create or remove them first");
        }

        return (old, source);
    }

    /// <summary>The old primary's data directory and port: asked from it when it runs, else --pgdata and its conninfo.</summary>
    private static async Task<(string PgData, int Port)> LocateAsync(NodeConfig old, string? pgdata, CancellationToken ct)
    {
        var port = ConnInfo.Parse(old.ConnInfo).LastOrDefault(p => p.Key == "port").Value is { Length: > 0 } p
            ? int.Parse(p.Split(',')[0], CultureInfo.InvariantCulture) : 5432;
        try
        {
            await using var conn = await StandbyConnInfo.OpenAsync(old.ConnInfo, ct);
            var facts = await PrimaryFacts.ReadAsync(conn, ct);
            port = facts.Int("port");
            pgdata ??= facts["data_directory"] ?? throw new NavetteException(
                $"role {facts.User} may not read data_directory on node {old.Name}; pass --pgdata");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            if (pgdata is null)
            {
                throw new NavetteException($"node {old.Name} is unreachable ({Daemon.SubscriptionWorker.Describe(e)}), so its data directory is unknown; "
                    + "pass --pgdata");
            }
        }

        return (pgdata.TrimEnd('/'), port);
    }

    private static async Task CheckRewindableAsync(LocalServer server, NodeConfig old, CancellationToken ct)
    {
        var control = await server.ControlDataAsync(ct);
        var hints = control.GetValueOrDefault("wal_log_hints setting") == "on";
        var checksums = control.GetValueOrDefault("Data page checksum version") is { } v && v != "0";
        if (!hints && !checksums)
        {
            throw new NavetteException($"node {old.Name} has neither wal_log_hints = on nor data checksums, which pg_rewind needs; nothing was changed. "
                + "Make it a standby from a new base backup instead (remove it from the nodes, then navette standby create), "
                + "and set wal_log_hints = on on your primaries so the next rewind is possible");
        }
    }

    private static async Task CheckSourceAsync(NpgsqlConnection conn, NodeConfig source, StandbyConfig standby, CancellationToken ct)
    {
        var facts = await PrimaryFacts.ReadAsync(conn, ct);
        if (facts.InRecovery)
            throw new NavetteException($"node {source.Name} is still in recovery; promote it first (navette standby promote {source.Name})");
        if (facts["full_page_writes"] == "off")
            throw new NavetteException($"node {source.Name} has full_page_writes = off, which pg_rewind cannot work with: ALTER SYSTEM SET full_page_writes = on; SELECT pg_reload_conf();");
        if (facts.Int("server_version_num") / 10000 != PgBinaries.MajorVersion)
            throw new NavetteException($"node {source.Name} runs PostgreSQL {facts.Int("server_version_num") / 10000}, the binaries here are {PgBinaries.MajorVersion}; pg_rewind needs the same major version");
        try
        {
            // pg_rewind reads the new timeline from the source's control file, which a promotion only updates at its next checkpoint.
            await PgQuery.ExecAsync(conn, "CHECKPOINT", ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
        }

        if (standby.Slot)
        {
            // Created before the rewind so the WAL the rewound server will ask for is kept from now on.
            await PgQuery.ExecAsync(conn, """
                SELECT pg_create_physical_replication_slot($1, true)
                 WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)
                """, ct, standby.SlotName);
        }
    }

    /// <summary>
    /// The archive the old primary fed through navette wal-archive, if any: pg_rewind can fetch the WAL it needs and the
    /// old primary no longer has from there (--restore-target-wal, through a restore_command written for it).
    /// </summary>
    private async Task<string?> OwnArchiveAsync(string pgdata, CancellationToken ct)
    {
        if (ServerConf.Read(pgdata, "archive_command") is not { } command || !NavetteInvocation.IsOurArchiveCommand(command, out var archive) || archive is null)
            return null;
        await ServerConf.SetAsync(pgdata, [new("restore_command", NavetteInvocation.RestoreCommand(archive, 0))],
            "navette standby rewind: lets pg_rewind fetch archived WAL", ct);
        return archive;
    }

    private async Task RewindAsync(string pgdata, NodeConfig old, NodeConfig source, string? ownArchive, CancellationToken ct)
    {
        var args = new List<string> { "-D", pgdata };
        if (ownArchive is not null)
            args.Add("--restore-target-wal");
        say($"pg_rewind -D {pgdata} --source-server ({source.Name}){(ownArchive is null ? "" : $" --restore-target-wal (from {ownArchive})")}");
        var result = await LocalServer.RunClientToolAsync("pg_rewind", "--source-server", StandbyConnInfo.ToPrimary(source, "navette rewind " + old.Name), args, ct);
        var output = ConnInfo.ScrubSecrets(result.CombinedOutput, source.ConnInfo);
        if (!result.Succeeded)
        {
            var missingWal = output.Contains("could not find previous WAL record", StringComparison.Ordinal) || output.Contains("could not open file", StringComparison.Ordinal)
                ? $" The WAL {old.Name} wrote before the promotion is gone (navette standby promote keeps it with slot {StandbyConfig.RewindSlotNameFor(source.Name)} when {old.Name} is reachable; "
                  + "otherwise wal_keep_size or an archive does)."
                : string.Empty;
            throw new NavetteException($"pg_rewind of node {old.Name} from {source.Name} failed; {old.Name} is stopped. pg_rewind reads all the WAL it needs before it copies anything, "
                + $"so when it stopped there, pg_ctl -D {pgdata} start brings {old.Name} back as it was.{missingWal} To make it a standby anyway, move {pgdata} away and use navette standby create. "
                + $"pg_rewind said: {output}");
        }

        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            say("  " + line);
    }

    /// <summary>
    /// pg_rewind keeps the target's slots and copies the source's other files: drop what only made sense before (the slot
    /// the new primary streamed through when it was this server's standby, the one promote left to keep WAL for this rewind).
    /// </summary>
    private static void RemoveLeftovers(string pgdata, string sourceName)
    {
        foreach (var name in new[] { StandbyConfig.SlotNameFor(sourceName), StandbyConfig.RewindSlotNameFor(sourceName) })
        {
            var slot = Path.Combine(pgdata, "pg_replslot", name);
            if (Directory.Exists(slot))
                Directory.Delete(slot, recursive: true);
        }
        foreach (var f in new[] { RestoreProgress.FileName, WalRestorer.PromoteSignalFile })
            File.Delete(Path.Combine(pgdata, f));
    }
}
