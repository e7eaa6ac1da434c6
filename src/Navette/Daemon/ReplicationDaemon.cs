using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Conflicts;
using Navette.Monitoring;
using Navette.Monitoring.Http;
using Navette.Synchronous;

namespace Navette.Daemon;

/// <summary>
/// <c>navette run</c>: one supervised worker per subscription until cancelled (SIGINT/SIGTERM), the monitor that
/// samples them every few seconds (and enforces the WAL retention limit), and the HTTP endpoint when asked for.
/// </summary>
internal sealed class ReplicationDaemon(NavetteConfig config, ILoggerFactory logs)
{
    public static SubscriptionPlan PlanFor(NavetteConfig config, SubscriptionConfig sub) => new(
        sub.Name, sub.From, sub.To,
        WithErrorDetail(config.Nodes[sub.From].ToNpgsqlConnectionString()),
        WithErrorDetail(config.Nodes[sub.To].ToNpgsqlConnectionString()),
        sub.Sets.Select(Sql.PublicationName).ToArray(),
        sub.InitialCopy, sub.Forward, sub.CopyWorkers)
    {
        Conflicts = ConflictRules.For(config, sub),
        ApplyTimeout = sub.ApplyTimeout,
        MaxTransactionMemory = sub.MaxTransactionMemory,
        FromConnInfo = config.Nodes[sub.From].RedactedConnInfo,
        ToConnInfo = config.Nodes[sub.To].RedactedConnInfo,
        Sets = sub.Sets.Select(s => config.Sets[s]).ToList(),
        Synchronous = sub.Synchronous,
        SubscriptionOrigins = config.Subscriptions.Values.ToDictionary(s => s.Name, s => s.From),
        Join = sub.Join is { } join ? new MeshJoinPlan(join.CopySubscription) : null,
        Joiners = config.Subscriptions.Values
            .Where(s => s.Join?.CopySubscription == sub.Name)
            .Select(s => new JoinerPlan(s.Name, s.From, WithErrorDetail(config.Nodes[s.From].ToNpgsqlConnectionString()), s.Join!.SeedSubscription))
            .ToList(),
    };

    /// <summary>
    /// An error's detail ("Failing row contains (...)", "Key (id)=(7) already exists") is what tells the operator
    /// which row the target refused; it goes to the daemon's log and the target's own catalog only.
    /// </summary>
    private static string WithErrorDetail(string connectionString) =>
        new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { IncludeErrorDetail = true }.ConnectionString;

    /// <summary>How often a daemon that follows its file looks at it.</summary>
    public static readonly TimeSpan ConfigPollInterval = TimeSpan.FromMilliseconds(500);

    private Dictionary<string, (CancellationTokenSource Stop, Task Run)> _running = new(StringComparer.Ordinal);
    private RecentEventsLoggerProvider? _events;

    public IReadOnlyList<SubscriptionWorker> Workers { get; private set; } = [];

    /// <summary>The configuration the workers run now (the file's latest valid content when following it).</summary>
    public NavetteConfig Config { get; private set; } = config;

    /// <summary>
    /// Runs until cancelled. With <see cref="DaemonOptions.FollowConfig"/>, a change of the file (a role change, an edit)
    /// that validates stops every worker and starts those of the new file; an invalid file is reported and ignored.
    /// </summary>
    public async Task RunAsync(DaemonOptions options, CancellationToken ct)
    {
        var log = logs.CreateLogger("navette");
        var current = Config;
        var text = options.FollowConfig ? await ReadTextAsync(current.SourcePath, ct) : null;
        for (var first = true; ; first = false)
        {
            using var generation = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var watch = options.FollowConfig
                ? Task.Run(() => WatchAsync(current.SourcePath, text, log, generation), CancellationToken.None)
                : Task.FromResult<(NavetteConfig, string?)?>(null);
            await RunGenerationAsync(current, options, first, generation.Token);
            await generation.CancelAsync();
            var changed = await watch;
            if (ct.IsCancellationRequested || changed is null) return;
            (current, text) = changed.Value;
            Config = current;
        }
    }

    private static async Task<string?> ReadTextAsync(string path, CancellationToken ct)
    {
        try { return await File.ReadAllTextAsync(path, ct); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Returns the new configuration once the file changed to a valid one (and cancels the generation), or null when stopped.</summary>
    private static async Task<(NavetteConfig, string?)?> WatchAsync(string path, string? known, ILogger log, CancellationTokenSource generation)
    {
        string? rejected = null;
        try
        {
            while (true)
            {
                await Task.Delay(ConfigPollInterval, generation.Token);
                var text = await ReadTextAsync(path, generation.Token);
                if (text is null || text == known || text == rejected) continue;
                try
                {
                    var next = ConfigLoader.Parse(text, path);
                    log.LogInformation("{File} changed: restarting the workers with its subscriptions ({Names})", path,
                        next.Subscriptions.Count == 0 ? "none" : string.Join(", ", next.Subscriptions.Values.Select(s => $"{s.Name} ({s.From} -> {s.To})")));
                    await generation.CancelAsync();
                    return (next, text);
                }
                catch (ConfigException e)
                {
                    rejected = text;
                    log.LogWarning("{File} changed but is not valid; the workers keep running the previous version:\n{Errors}", path, e.Message);
                }
            }
        }
        catch (OperationCanceledException) { return null; }
    }

    private async Task RunGenerationAsync(NavetteConfig config, DaemonOptions options, bool first, CancellationToken ct)
    {
        var log = logs.CreateLogger("navette");
        var only = options.Only;
        var subs = config.Subscriptions.Values.Where(s => only is null || only.Count == 0 || only.Contains(s.Name)).ToList();
        if (first && only is { Count: > 0 })
            foreach (var missing in only.Where(n => !config.Subscriptions.ContainsKey(n)))
                throw new NavetteException($"no subscription named {missing} in {config.SourcePath}; defined: {string.Join(", ", config.Subscriptions.Keys)}");
        if (subs.Count == 0 && first && !options.FollowConfig)
            throw new NavetteException($"{config.SourcePath} defines no subscription; nothing to run");
        if (options.Http is { } endpoint)
            MonitoringServer.CheckExposure(endpoint, options.HttpToken);

        var monitor = new DaemonMonitor(config, subs.Select(s => s.Name).ToList(), logs.CreateLogger("navette.monitor"));
        var names = subs.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        if (_events is null)
        {
            _events = new RecentEventsLoggerProvider(monitor.Events, names);
            logs.AddProvider(_events);
        }
        else _events.Retarget(monitor.Events, names);

        var startable = new List<SubscriptionConfig>();
        foreach (var s in subs)
        {
            if (await WalRetentionGuard.DroppedEarlierAsync(config, s, ct) is { } reason)
            {
                monitor.MarkDropped(s.Name, reason);
                log.LogError("subscription {Subscription} is not started: {Reason}", s.Name, reason);
            }
            else startable.Add(s);
        }
        Workers = startable.Select(s => new SubscriptionWorker(WithBackoff(PlanFor(config, s), options), logs.CreateLogger($"navette.{s.Name}"), monitor.Metrics[s.Name])).ToList();
        monitor.Workers = Workers.ToDictionary(w => w.Plan.Name, StringComparer.Ordinal);

        await using var server = options.Http is { } http
            ? await MonitoringServer.StartAsync(http, options.HttpToken, monitor, logs, ct)
            : null;
        log.LogInformation("navette run: {Count} subscription(s): {Names}", Workers.Count, string.Join(", ", startable.Select(s => $"{s.Name} ({s.From} -> {s.To})")));

        _running = new Dictionary<string, (CancellationTokenSource Stop, Task Run)>(StringComparer.Ordinal);
        foreach (var w in Workers)
        {
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _running[w.Plan.Name] = (stop, Task.Run(() => w.RunSupervisedAsync(stop.Token), CancellationToken.None));
        }
        var guard = new WalRetentionGuard(config, monitor, StopWorkerAsync, logs.CreateLogger("navette.wal_guard"));
        using var stopSampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampler = Task.Run(() => SampleLoopAsync(monitor, guard, log, stopSampling.Token), CancellationToken.None);
        var fencing = Task.Run(() => Roles.Fencing.GuardAsync(config, logs.CreateLogger("navette.fencing"), stopSampling.Token), CancellationToken.None);
        var sequences = Task.Run(() => Sequences.SequenceTicker.RunAsync(config, _running.Keys.ToList(), logs.CreateLogger("navette.sequences"), stopSampling.Token),
            CancellationToken.None);
        // degrade_after: one guard per origin whose synchronous subscriptions this daemon runs and may degrade.
        var degradeGuards = SynchronousGroup.For(config).Values
            .Select(g => (Group: g, Guarded: g.Subscriptions.Where(s => s.DegradeAfter is not null && startable.Contains(s)).ToList()))
            .Where(g => g.Guarded.Count > 0)
            .Select(g => Task.Run(() => new DegradeGuard(config, g.Group, g.Guarded, logs.CreateLogger("navette.synchronous")).RunAsync(stopSampling.Token), CancellationToken.None))
            .ToList();
        try
        {
            // Runs until stopped, even when the guard stopped every worker: the endpoint still tells what happened.
            try { await Task.Delay(Timeout.Infinite, ct); } catch (OperationCanceledException) { }
            await Task.WhenAll(_running.Values.Select(r => r.Run));
        }
        finally
        {
            await stopSampling.CancelAsync();
            await sampler;
            await fencing;
            await sequences;
            await Task.WhenAll(degradeGuards);
            await guard.DrainAsync();
            foreach (var r in _running.Values) r.Stop.Dispose();
        }
    }

    private static SubscriptionPlan WithBackoff(SubscriptionPlan plan, DaemonOptions options) =>
        options.RetryBackoff is { } b ? plan with { MinBackoff = b.Min, MaxBackoff = b.Max } : plan;

    private async Task StopWorkerAsync(string subscription)
    {
        if (!_running.TryGetValue(subscription, out var r)) return;
        await r.Stop.CancelAsync();
        await r.Run;
    }

    private static async Task SampleLoopAsync(DaemonMonitor monitor, WalRetentionGuard guard, ILogger log, CancellationToken ct)
    {
        // The first sample waits one interval: starting the workers comes first, and the nodes' status is read
        // while they settle rather than while they connect.
        using var timer = new PeriodicTimer(DaemonMonitor.SampleInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    var rows = await monitor.SampleAsync(ct);
                    await guard.EnforceAsync(rows, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    log.LogDebug("monitor: sampling failed: {Error}", SubscriptionWorker.Describe(e));
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
