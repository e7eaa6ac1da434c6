using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Navette.Cli.Demo;
using Navette.Config;
using Navette.Daemon;
using Navette.Markers;
using Navette.Setup;
using Navette.Standby;
using Navette.Status;

namespace Navette.Cli;

/// <summary>The <c>navette</c> command line: parsing, logging set-up, and turning errors into exit codes.</summary>
internal static class NavetteCommand
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitConfigError = 2;
    public const int ExitTimeout = 3;
    public const int ExitDifferences = 4;

    internal static readonly Option<string> ConfigOption = new("--config", "-c")
    {
        Description = "Configuration file",
        DefaultValueFactory = _ => "navette.yaml",
        Recursive = true,
    };

    internal static readonly Option<bool> VerboseOption = new("--verbose", "-v")
    {
        Description = "Log debug detail",
        Recursive = true,
    };

    private static readonly Option<string> LogFormatOption = new("--log-format")
    {
        Description = "Log lines as 'simple' text or 'json' (one JSON object per line)",
        DefaultValueFactory = _ => "simple",
        Recursive = true,
    };

    public static async Task<int> RunAsync(string[] args)
    {
        LogFormatOption.AcceptOnlyFromAmong("simple", "json");
        var root = new RootCommand("Navette: PostgreSQL replication (one-way, cascades, many-to-one, multi-master meshes) over logical decoding.");
        root.Options.Add(ConfigOption);
        root.Options.Add(VerboseOption);
        root.Options.Add(LogFormatOption);
        root.Subcommands.Add(ApplyCommand());
        root.Subcommands.Add(RunCommand());
        root.Subcommands.Add(StatusCommand());
        root.Subcommands.Add(WaitCommand());
        root.Subcommands.Add(ConflictsCommand());
        root.Subcommands.Add(CompareCommand());
        root.Subcommands.Add(RepairCommand());
        root.Subcommands.Add(ResyncCommand());
        root.Subcommands.Add(SequencesCommand());
        root.Subcommands.Add(DdlCommands.Execute());
        root.Subcommands.Add(DdlCommands.SkipDdl());
        root.Subcommands.Add(RoleCommands.Switchover());
        root.Subcommands.Add(RoleCommands.Failover());
        root.Subcommands.Add(RoleCommands.Rejoin());
        root.Subcommands.Add(StandbyCommands.Create());
        root.Subcommands.Add(WalCommands.Archive(VerboseOption));
        root.Subcommands.Add(WalCommands.Restore(VerboseOption));
        root.Subcommands.Add(DemoCommand.Create(VerboseOption));
        // SIGINT/SIGTERM cancel the token; the daemon then finishes or rolls back its current batch and records
        // its state, which can take longer than System.CommandLine's default grace of 2 s before a forced exit.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        return await root.Parse(args).InvokeAsync(invocation);
    }

    internal static ILoggerFactory CreateLogs(bool verbose, string format = "simple") =>
        LoggerFactory.Create(b =>
        {
            b.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information).AddFilter("Npgsql", LogLevel.Warning);
            if (format == "json")
                b.AddJsonConsole(o =>
                {
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                    o.IncludeScopes = false;
                    // Messages keep their '->' and quotes readable; the output is still valid JSON.
                    o.JsonWriterOptions = new System.Text.Json.JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
                });
            else
                b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        });

    private static ILoggerFactory CreateLogs(ParseResult pr) => CreateLogs(pr.GetValue(VerboseOption), pr.GetValue(LogFormatOption)!);

    /// <summary>Runs a command body, mapping operator errors to a message and an exit code (no stack traces).</summary>
    internal static async Task<int> Guard(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine(e.Message);
            return ExitConfigError;
        }
        catch (NavetteException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return ExitFailure;
        }
        catch (Npgsql.NpgsqlException e)
        {
            Console.Error.WriteLine("error: " + Daemon.SubscriptionWorker.Describe(e));
            return ExitFailure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Processes.ProcessFailedException)
        {
            // Files and tools (data directories, archives, pg_ctl): the message names the path or the command.
            Console.Error.WriteLine("error: " + e.Message);
            return ExitFailure;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted");
            return ExitFailure;
        }
    }

    private static Command ApplyCommand()
    {
        var cmd = new Command("apply", "Check every node, then install the catalog, publications, slots and origins the file declares (idempotent).");
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            using var logs = CreateLogs(pr);
            var actions = await new Reconciler(config, logs.CreateLogger("navette.apply")).RunAsync(ct);
            if (actions.Count == 0)
                Console.WriteLine("navette apply: every node already matches " + config.SourcePath + "; nothing to change");
            else
                foreach (var a in actions) Console.WriteLine("  " + a);
            return ExitOk;
        }));
        return cmd;
    }

    private static Command RunCommand()
    {
        var only = new Option<string[]>("--subscription", "-s") { Description = "Run only these subscriptions (default: all)", AllowMultipleArgumentsPerToken = true };
        var http = new Option<string?>("--http")
        {
            Description = "Serve /metrics, /health, /api/status and the dashboard on ADDRESS:PORT (e.g. 127.0.0.1:9540; default: monitoring.http, else none)",
        };
        var token = new Option<string?>("--http-token")
        {
            Description = "Token every HTTP request must carry (Authorization: Bearer TOKEN); required off loopback. Default: NAVETTE_HTTP_TOKEN, else monitoring.http_token",
        };
        var cmd = new Command("run", "Run the replication daemon: one supervised worker per subscription, until SIGINT/SIGTERM.") { only, http, token };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            var listen = pr.GetValue(http) ?? config.Monitoring.Http;
            HttpEndpoint? endpoint = null;
            if (listen is not null && !HttpEndpoint.TryParse(listen, out endpoint, out var problem))
                throw new NavetteException($"--http {listen}: {problem}; e.g. --http 127.0.0.1:9540");
            var secret = pr.GetValue(token) ?? (Environment.GetEnvironmentVariable("NAVETTE_HTTP_TOKEN") is { Length: > 0 } e ? e : null) ?? config.Monitoring.HttpToken;
            using var logs = CreateLogs(pr);
            await new ReplicationDaemon(config, logs).RunAsync(new DaemonOptions(pr.GetValue(only), endpoint, secret, FollowConfig: true), ct);
            return ExitOk;
        }));
        return cmd;
    }

    private static Command StatusCommand()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var watch = new Option<bool>("--watch", "-w") { Description = "Redraw the table every --interval seconds until Ctrl+C (copy progress bars included)" };
        var interval = new Option<double>("--interval") { Description = "Seconds between two refreshes of --watch", DefaultValueFactory = _ => 2 };
        var cmd = new Command("status", "Show each subscription (state, lag, last applied commit, throughput, WAL retained by its slot), then each standby.") { json, watch, interval };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            var reader = new StatusReader(config);
            if (pr.GetValue(watch))
            {
                var every = pr.GetValue(interval);
                if (every is < 0.2 or > 3600)
                    throw new NavetteException($"--interval {every}: use a number of seconds from 0.2 to 3600");
                await StatusWatch.RunAsync(reader, TimeSpan.FromSeconds(every), pr.GetValue(json), Console.Out, ct);
                return ExitOk;
            }
            var readStandbys = pr.GetValue(json) ? null : new StandbyStatusReader(config).ReadAsync(ct);
            var rows = await reader.ReadAsync(ct);
            var failed = rows.Any(r => r.State is "failed" or "unreachable" or "not installed");
            // The JSON stays the array of subscriptions that scripts already parse (and its exit code theirs);
            // standbys have their own: navette standby status --json.
            if (pr.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(rows, StatusJson.Options));
                return failed ? ExitFailure : ExitOk;
            }

            var standbys = await readStandbys!;
            if (rows.Count > 0 || standbys.Count == 0)
                StatusTable.Write(Console.Out, rows);
            if (standbys.Count > 0)
            {
                if (rows.Count > 0)
                    Console.WriteLine();
                StandbyTable.Write(Console.Out, standbys);
            }

            return failed || standbys.Any(s => s.IsProblem) ? ExitFailure : ExitOk;
        }));
        return cmd;
    }

    private static Command WaitCommand()
    {
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait before giving up", DefaultValueFactory = _ => 60 };
        var cmd = new Command("wait", "Wait until every subscription applied everything its origin had committed when wait started.") { timeout };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            var pending = await new FenceWaiter(config).WaitAsync(TimeSpan.FromSeconds(pr.GetValue(timeout)), Console.WriteLine, ct);
            if (pending.Count == 0)
            {
                Console.WriteLine("every subscription is caught up");
                return ExitOk;
            }
            foreach (var p in pending)
                Console.Error.WriteLine($"timeout: subscription {p.Subscription} has not yet applied on {p.Node} what {string.Join(", ", p.WaitingForFencesFrom)} committed when wait started (see navette status)"
                                        + (p.LastError is null ? "" : $"; last error: {p.LastError}"));
            return ExitTimeout;
        }));
        return cmd;
    }

    private static Command ConflictsCommand()
    {
        var since = new Option<DateTime?>("--since") { Description = "Only conflicts logged at or after this time (e.g. 2026-12-01T10:00Z)" };
        var table = new Option<string?>("--table") { Description = "Only this table (schema.table)" };
        var node = new Option<string?>("--node") { Description = "Only the conflicts this node resolved" };
        var limit = new Option<int>("--limit") { Description = "At most this many conflicts, newest first", DefaultValueFactory = _ => 100 };
        var json = new Option<bool>("--json") { Description = "Print JSON with both rows of every conflict" };
        var cmd = new Command("conflicts", "Show the conflicts the nodes resolved (navette.conflict_log on each node), newest first.") { since, table, node, limit, json };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            var (entries, unreachable) = await new Conflicts.ConflictReport(config).ReadAsync(pr.GetValue(node), pr.GetValue(since)?.ToUniversalTime(), pr.GetValue(table), pr.GetValue(limit), ct);
            if (pr.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(entries, StatusJson.Options));
            else
                ConflictTable.Write(Console.Out, entries);
            foreach (var u in unreachable) Console.Error.WriteLine("warning: " + u);
            return unreachable.Count > 0 ? ExitFailure : ExitOk;
        }));

        var keep = new Option<string>("--keep") { Description = "incoming (apply the incoming change), local (keep the local row) or skip (drop the change)", Required = true };
        var id = new Option<long?>("--id") { Description = "The conflict's id (with --node)" };
        var onNode = new Option<string?>("--node") { Description = "The node that logged the conflict" };
        var sub = new Option<string?>("--subscription", "-s") { Description = "Every conflict this subscription stopped on" };
        var resolve = new Command("resolve", "Decide conflicts that stopped a subscription (policy abort); it resumes and applies the decision.") { keep, id, onNode, sub };
        resolve.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            var n = await new Conflicts.ConflictReport(config).ResolveAsync(pr.GetValue(onNode), pr.GetValue(id), pr.GetValue(sub), pr.GetValue(keep)!, ct);
            if (n == 0)
            {
                Console.Error.WriteLine("no aborted conflict matches; navette conflicts shows them (outcome aborted)");
                return ExitFailure;
            }
            Console.WriteLine($"{n} conflict(s) decided ({pr.GetValue(keep)}); the stopped subscription applies the decision at its next attempt");
            return ExitOk;
        }));
        cmd.Subcommands.Add(resolve);
        return cmd;
    }

    private static Command SequencesCommand()
    {
        var set = new Option<string>("--set") { Description = "The set written on several nodes", Required = true };
        var step = new Option<int?>("--step") { Description = $"The increment every node uses (default {Setup.SequencePartitioner.DefaultStep}, or the number of nodes if more)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the statements without running them" };
        var partition = new Command("partition", "Give each node of a mesh its own values of the sequences the set's tables own (same increment, a remainder per node).") { set, step, dryRun };
        partition.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            foreach (var a in await new Setup.SequencePartitioner(config).PartitionAsync(pr.GetValue(set)!, pr.GetValue(step), pr.GetValue(dryRun), ct))
                Console.WriteLine("  " + a);
            return ExitOk;
        }));
        var cmd = new Command("sequences", "Sequences of tables written on several nodes.");
        cmd.Subcommands.Add(partition);
        return cmd;
    }

    private static readonly Option<string?> SetSelector = new("--set") { Description = "Only the tables of this set" };
    private static readonly Option<string?> TableSelector = new("--table") { Description = "Only this table (schema.table, or a pattern such as public.order_*)" };
    private static readonly Option<string?> FromSelector = new("--from") { Description = "Only subscriptions from this node" };
    private static readonly Option<string?> ToSelector = new("--to") { Description = "Only subscriptions to this node" };
    private static readonly Option<int> ParallelOption = new("--parallel") { Description = "Ranges compared at once per table", DefaultValueFactory = _ => 4 };

    private static Consistency.CompareSelection Selection(ParseResult pr) =>
        new(pr.GetValue(SetSelector), pr.GetValue(TableSelector), pr.GetValue(FromSelector), pr.GetValue(ToSelector));

    private static Command CompareCommand()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON, with the keys of every difference" };
        var details = new Option<bool>("--details") { Description = "List the keys of the rows that differ" };
        var cmd = new Command("compare", "Compare tables between each subscription's origin and target while both keep working (exit 0 only when identical).")
            { SetSelector, TableSelector, FromSelector, ToSelector, ParallelOption, json, details };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            using var logs = CreateLogs(pr.GetValue(VerboseOption));
            var options = new Consistency.CompareOptions { Parallel = Math.Max(1, pr.GetValue(ParallelOption)) };
            var results = await new Consistency.CompareRunner(config, options, logs.CreateLogger("navette.compare"))
                .RunAsync(Selection(pr), pr.GetValue(json) ? null : m => Console.Error.WriteLine(m), ct);
            if (pr.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(results.Select(CompareTable.Json), StatusJson.Options));
            else
                CompareTable.Write(Console.Out, results, pr.GetValue(details));
            return results.Any(r => r.Error is not null) ? ExitFailure : results.All(r => r.Identical) ? ExitOk : ExitDifferences;
        }));
        return cmd;
    }

    private static Command RepairCommand()
    {
        var sqlFile = new Option<string?>("--sql") { Description = "Write the repairing statements to this file for review instead of applying them" };
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var cmd = new Command("repair", "Compare, then make each target match its origin on the differing rows only (in the stream, while both keep working).")
            { SetSelector, TableSelector, FromSelector, ToSelector, ParallelOption, sqlFile, json };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            using var logs = CreateLogs(pr.GetValue(VerboseOption));
            var log = logs.CreateLogger("navette.repair");
            var options = new Consistency.CompareOptions { Parallel = Math.Max(1, pr.GetValue(ParallelOption)) };
            var runner = new Consistency.CompareRunner(config, options, log);
            var found = await runner.RunAsync(Selection(pr), null, ct);
            if (found.FirstOrDefault(r => r.Error is not null) is { } failed)
                throw new NavetteException($"compare of {failed.Subject.Name} ({failed.Subject.Subscription}) failed: {failed.Error}");
            var damaged = found.Where(r => !r.Identical).ToList();
            if (pr.GetValue(sqlFile) is { } path)
            {
                await using (var w = new StreamWriter(path))
                    foreach (var r in damaged.Where(r => r.Differences.Count > 0))
                        await Consistency.Repairer.WriteSqlAsync(r, w, ct);
                Console.WriteLine($"{damaged.Sum(r => r.Differences.Count)} row(s) to repair in {damaged.Count} table(s); statements written to {path} (nothing was changed)");
                return ExitOk;
            }
            var repairer = new Consistency.Repairer(log);
            var repairs = new List<Consistency.TableRepair>();
            foreach (var r in damaged.Where(r => r.Differences.Count > 0))
                repairs.Add(await repairer.RepairAsync(r, options.ResultTimeout, ct));
            // What the repair could not settle (rows changed meanwhile, ranges that kept changing) shows in a second compare.
            var after = damaged.Count == 0 ? [] : await runner.RunAsync(Selection(pr), null, ct);
            if (pr.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    repaired = repairs.Select(x => new { subscription = x.Subject.Subscription, table = x.Subject.Name, written = x.Written, removed = x.Removed, left_to_stream = x.Skipped }),
                    after = after.Select(CompareTable.Json),
                }, StatusJson.Options));
            else
            {
                if (repairs.Count == 0) Console.WriteLine("nothing to repair: every table is identical");
                foreach (var x in repairs)
                    Console.WriteLine($"{x.Subject.Subscription} {x.Subject.Name}: {x.Written} row(s) written, {x.Removed} removed" +
                                      (x.Skipped.Count > 0 ? $", {x.Skipped.Count} changed meanwhile and left to the stream" : ""));
                if (after.Count > 0) CompareTable.Write(Console.Out, after, details: false);
            }
            return after.All(r => r.Identical) ? ExitOk : ExitDifferences;
        }));
        return cmd;
    }

    private static Command ResyncCommand()
    {
        var subscription = new Argument<string>("subscription") { Description = "The subscription whose slot was lost" };
        var cmd = new Command("resync", "Bring a replica whose slot was lost level with its origin, moving only the rows that differ, then let it stream again (stop navette run first).")
            { subscription, ParallelOption };
        cmd.SetAction((pr, ct) => Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(ConfigOption)!);
            using var logs = CreateLogs(pr.GetValue(VerboseOption));
            var options = new Consistency.CompareOptions { Parallel = Math.Max(1, pr.GetValue(ParallelOption)) };
            var report = await new Consistency.Resync(config, options, logs.CreateLogger("navette.resync")).RunAsync(pr.GetValue(subscription)!, Console.Error.WriteLine, ct);
            foreach (var (compared, written, removed) in report.Tables)
                Console.WriteLine($"  {compared.Subject.Name}: {compared.OriginRows} rows, {compared.Differences.Count} differed: {written} written, {removed} removed");
            Console.WriteLine($"subscription {report.Subscription} is level with its origin at {report.StartsAt}; navette run streams it from there");
            return ExitOk;
        }));
        return cmd;
    }
}
