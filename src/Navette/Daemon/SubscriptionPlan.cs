using Navette.Conflicts;

namespace Navette.Daemon;

/// <summary>Everything a worker needs to run one subscription, resolved from the configuration.</summary>
internal sealed record SubscriptionPlan(
    string Name,
    string FromNode,
    string ToNode,
    string SourceConnectionString,
    string TargetConnectionString,
    IReadOnlyList<string> Publications,
    bool InitialCopy,
    bool Forward,
    int CopyWorkers)
{
    /// <summary>The nodes' conninfos with any password replaced (for error messages).</summary>
    public string FromConnInfo { get; init; } = "";

    public string ToConnInfo { get; init; } = "";

    /// <summary>How long an apply statement waits for a lock on the target before the attempt fails (<c>apply_timeout</c>).</summary>
    public TimeSpan ApplyTimeout { get; init; } = Config.SubscriptionConfig.DefaultApplyTimeout;

    /// <summary>Above this a source transaction's changes are spilled to a temporary file (<c>max_transaction_memory</c>).</summary>
    public long MaxTransactionMemory { get; init; } = Config.SubscriptionConfig.DefaultMaxTransactionMemory;

    /// <summary>The sets the subscription carries (their tables and how their schema changes are replayed).</summary>
    public IReadOnlyList<Config.SetConfig> Sets { get; init; } = [];

    /// <summary>The tables' conflict policies, or null when the subscription applies without conflict detection.</summary>
    public ConflictRules? Conflicts { get; init; }

    /// <summary>Every subscription of the configuration and the node it reads from (to tell which node wrote a row).</summary>
    public IReadOnlyDictionary<string, string> SubscriptionOrigins { get; init; } = new Dictionary<string, string>();

    /// <summary>Set for a mesh member's subscription that starts where the seed's copy to its node left it.</summary>
    public MeshJoinPlan? Join { get; init; }

    /// <summary>For the seed's copy to a mesh member: the member's other subscriptions, which start from this copy's snapshot.</summary>
    public IReadOnlyList<JoinerPlan> Joiners { get; init; } = [];

    /// <summary>
    /// Commit applied transactions without waiting for the WAL flush, confirming to the origin only what PostgreSQL
    /// reports flushed. Used where every source transaction is its own target transaction (conflict handling).
    /// </summary>
    public bool AsyncCommit => Conflicts is not null && !Synchronous;

    /// <summary>
    /// The origin lists this subscription in synchronous_standby_names: its commits wait for the position this worker
    /// confirms, so every confirmation is sent at once (not at the next status interval) and only after a durable commit.
    /// </summary>
    public bool Synchronous { get; init; }

    /// <summary>How long the worker waits before retrying a failed attempt, doubling up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>Waits for the copy subscription <see cref="CopySubscription"/> to position this one.</summary>
internal sealed record MeshJoinPlan(string CopySubscription);

/// <summary>
/// A subscription Y → X of a mesh member X that the seed's copy to X positions: <see cref="Subscription"/> (Y → X)
/// starts where the seed's <see cref="SeedSubscription"/> (Y → seed) was in the copy's snapshot.
/// <see cref="FromConnectionString"/> is Y, where the copy writes a fence first.
/// </summary>
internal sealed record JoinerPlan(string Subscription, string FromNode, string FromConnectionString, string SeedSubscription);
