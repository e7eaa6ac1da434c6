using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Conflicts;

namespace Navette.Daemon;

/// <summary><c>navette run</c>: one supervised worker per subscription until cancelled (SIGINT/SIGTERM).</summary>
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

    public IReadOnlyList<SubscriptionWorker> Workers { get; private set; } = [];

    public async Task RunAsync(IReadOnlyCollection<string>? only, CancellationToken ct)
    {
        var log = logs.CreateLogger("navette");
        var subs = config.Subscriptions.Values.Where(s => only is null || only.Count == 0 || only.Contains(s.Name)).ToList();
        if (only is { Count: > 0 })
            foreach (var missing in only.Where(n => !config.Subscriptions.ContainsKey(n)))
                throw new NavetteException($"no subscription named {missing} in {config.SourcePath}; defined: {string.Join(", ", config.Subscriptions.Keys)}");
        if (subs.Count == 0)
            throw new NavetteException($"{config.SourcePath} defines no subscription; nothing to run");
        Workers = subs.Select(s => new SubscriptionWorker(PlanFor(config, s), logs.CreateLogger($"navette.{s.Name}"))).ToList();
        log.LogInformation("navette run: {Count} subscription(s): {Names}", Workers.Count, string.Join(", ", subs.Select(s => $"{s.Name} ({s.From} -> {s.To})")));
        await Task.WhenAll(Workers.Select(w => Task.Run(() => w.RunSupervisedAsync(ct), CancellationToken.None)));
    }
}
