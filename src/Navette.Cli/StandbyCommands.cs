using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Navette.Config;
using Navette.Standby;
using Navette.Status;

namespace Navette.Cli;

/// <summary><c>navette standby create|status|promote|rewind</c>: PostgreSQL's own physical standbys.</summary>
internal static class StandbyCommands
{
    public static Command Create()
    {
        var cmd = new Command("standby", "PostgreSQL physical standbys (warm, hot, streaming): create, watch, promote, rewind.");
        cmd.Subcommands.Add(CreateCommand());
        cmd.Subcommands.Add(StatusCommand());
        cmd.Subcommands.Add(PromoteCommand());
        cmd.Subcommands.Add(RewindCommand());
        return cmd;
    }

    private static Command CreateCommand()
    {
        var from = new Option<string>("--from") { Description = "The node to copy and follow (its primary)", Required = true };
        var name = new Option<string>("--name") { Description = "The standby's name in the configuration file", Required = true };
        var pgdata = new Option<string>("--pgdata") { Description = "Its data directory on this machine (absolute; new or empty)", Required = true };
        var port = new Option<int>("--port") { Description = "Its port", Required = true };
        var mode = new Option<string>("--mode") { Description = "streaming (primary_conninfo) or archive (restore_command from --archive: a warm standby)", Required = true };
        mode.AcceptOnlyFromAmong("streaming", "archive");
        var hot = new Option<bool>("--hot") { Description = "Answer read-only queries while recovering (hot_standby = on)" };
        var slot = new Option<bool>("--slot") { Description = "Stream through a physical slot on the primary (navette_standby_NAME), so the WAL it needs is kept" };
        var archive = new Option<string?>("--archive") { Description = "Archive folder: required with --mode archive; with streaming, a fallback for WAL the primary no longer has" };
        var delay = new Option<string?>("--delay") { Description = "Apply WAL this late (recovery_min_apply_delay), e.g. 30min" };
        var host = new Option<string>("--host") { Description = "Where navette connects to the standby", DefaultValueFactory = _ => StandbyConfig.DefaultHost };
        var archiveTimeout = new Option<double?>("--archive-timeout") { Description = $"archive_timeout to set on the primary, in seconds (archive mode; default: keep it, or {PrimaryArchiving.DefaultTimeoutSeconds} s when it is 0)" };
        var restart = new Option<bool>("--restart-primary") { Description = "Allow navette to restart the primary (pg_ctl, on this machine) when archive_mode must be turned on" };
        var maxWait = new Option<double>("--restore-max-wait") { Description = "Seconds wal-restore waits for the next segment (archive mode)", DefaultValueFactory = _ => StandbyCreator.DefaultRestoreMaxWait };
        var cmd = new Command("create", "Make a standby of a node: base backup, recovery settings, start it, record it in the configuration file.")
        {
            from, name, pgdata, port, mode, hot, slot, archive, delay, host, archiveTimeout, restart, maxWait,
        };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            var standbyMode = pr.GetValue(mode) == "archive" ? StandbyMode.Archive : StandbyMode.Streaming;
            if (standbyMode == StandbyMode.Archive && pr.GetValue(archive) is null)
                throw new NavetteException("--mode archive needs --archive DIR, the folder the primary archives WAL into and the standby restores it from");
            if (pr.GetValue(port) is < 1 or > 65535)
                throw new NavetteException($"--port must be from 1 to 65535, not {pr.GetValue(port)}");
            var wanted = new StandbyConfig(pr.GetValue(name)!, pr.GetValue(from)!, pr.GetValue(pgdata)!, pr.GetValue(port), pr.GetValue(host)!,
                standbyMode, pr.GetValue(hot), pr.GetValue(slot), pr.GetValue(archive), Delay(pr.GetValue(delay)), Line: 0);
            var request = new StandbyCreateRequest(wanted, pr.GetValue(archiveTimeout), pr.GetValue(restart), pr.GetValue(maxWait));
            var standby = await new StandbyCreator(config, Console.WriteLine).RunAsync(request, ct);
            Console.WriteLine($"standby {standby.Name} created: {StandbyCreator.Describe(standby)}");
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }

    private static Command StatusCommand()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var cmd = new Command("status", "Show each standby: mode, state, received and replayed WAL, lag, archive backlog.") { json };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            var rows = await new StandbyStatusReader(config).ReadAsync(ct);
            if (pr.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(rows, StatusJson.Options));
            else if (rows.Count == 0)
                Console.WriteLine($"no standbys in {config.SourcePath} (navette standby create makes one)");
            else
                StandbyTable.Write(Console.Out, rows);
            return rows.Any(r => r.IsProblem) ? NavetteCommand.ExitFailure : NavetteCommand.ExitOk;
        }));
        return cmd;
    }

    private static Command PromoteCommand()
    {
        var name = new Argument<string>("NAME") { Description = "The standby to promote" };
        var noWait = new Option<bool>("--no-wait") { Description = "Do not wait for the standby to receive what the primary has written (failover when the primary is gone or must not be waited for)" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for catch-up and for the promotion", DefaultValueFactory = _ => 120 };
        var cmd = new Command("promote", "Promote a standby to a primary (after it received what its primary had written), and record it as a node.")
        {
            name, noWait, timeout,
        };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            await new StandbyPromoter(config, Console.WriteLine).RunAsync(pr.GetValue(name)!, !pr.GetValue(noWait), TimeSpan.FromSeconds(pr.GetValue(timeout)), ct);
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }

    private static Command RewindCommand()
    {
        var name = new Argument<string>("NAME") { Description = "The former primary (a node) to turn into a standby" };
        var from = new Option<string>("--from") { Description = "The node it follows from now on (the new primary)", Required = true };
        var pgdata = new Option<string?>("--pgdata") { Description = "Its data directory (default: asked from it, when it runs)" };
        var hot = new Option<bool>("--hot") { Description = "Answer read-only queries while recovering" };
        var slot = new Option<bool>("--slot") { Description = "Stream through a physical slot on the new primary" };
        var archive = new Option<string?>("--archive") { Description = "Archive folder to fall back on for WAL the new primary no longer has" };
        var delay = new Option<string?>("--delay") { Description = "Apply WAL this late (recovery_min_apply_delay)" };
        var cmd = new Command("rewind", "Make a former primary follow the new one: stop it, pg_rewind, standby settings, start, record it as a standby.")
        {
            name, from, pgdata, hot, slot, archive, delay,
        };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            var request = new StandbyRewindRequest(pr.GetValue(name)!, pr.GetValue(from)!, pr.GetValue(pgdata), pr.GetValue(hot), pr.GetValue(slot),
                pr.GetValue(archive), Delay(pr.GetValue(delay)));
            var standby = await new StandbyRewinder(config, Console.WriteLine).RunAsync(request, ct);
            Console.WriteLine($"node {standby.Name} is now a standby: {StandbyCreator.Describe(standby)}");
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }

    private static string? Delay(string? text)
    {
        if (text is null)
            return null;
        if (!PgDuration.TryParse(text, out var normalized, out _, out var problem))
            throw new NavetteException("--delay " + problem);
        return normalized;
    }
}

/// <summary>The human form of <c>navette standby status</c> (and the standby part of <c>navette status</c>).</summary>
internal static class StandbyTable
{
    public static void Write(TextWriter w, IReadOnlyList<StandbyStatus> rows)
    {
        var header = new[] { "STANDBY", "FROM", "MODE", "STATE", "RECEIVED", "REPLAYED", "LAG", "LAG S", "LAST REPLAYED (UTC)", "ARCHIVE BACKLOG", "SLOT RETAINED" };
        var table = rows.Select(r => new[]
        {
            r.Name, r.From, r.Mode + (r.Hot ? ", hot" : ""), r.State,
            r.ReceivedLsn ?? "-",
            r.ReplayedLsn ?? "-",
            r.LagBytes is { } b ? StatusTable.Bytes(b) : "-",
            r.LagSeconds is { } s ? s.ToString("F1", CultureInfo.InvariantCulture) : "-",
            r.LastReplayedCommit?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-",
            r.ArchiveBacklog is { } n ? n.ToString(CultureInfo.InvariantCulture) + " files" : "-",
            r.SlotRetainedBytes is { } x ? StatusTable.Bytes(x) : "-",
        }).ToList();
        StatusTable.WriteColumns(w, header, table);
        foreach (var r in rows)
        {
            if (r.Error is not null)
                w.WriteLine($"{r.Name}: {r.Error}");
            if (r.ArchiveError is not null)
                w.WriteLine($"{r.Name}: {r.ArchiveError}");
        }
    }
}
