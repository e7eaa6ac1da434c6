namespace Navette.Config;

/// <summary>
/// A fully validated configuration. Every dictionary iterates in file order.
/// Instances are only produced by <see cref="ConfigLoader"/> once the whole file is known to be valid.
/// </summary>
internal sealed record NavetteConfig(
    string SourcePath,
    IReadOnlyDictionary<string, NodeConfig> Nodes,
    IReadOnlyDictionary<string, SetConfig> Sets,
    IReadOnlyDictionary<string, SubscriptionConfig> Subscriptions,
    IReadOnlyDictionary<string, StandbyConfig> Standbys)
{
    public MonitoringConfig Monitoring { get; init; } = MonitoringConfig.Default;

    /// <summary>
    /// Whether the subscription's target settles conflicts on the set's tables: the set names a policy, or it is written
    /// on several nodes and the target is one of its writers (a read-only replica fed from a mesh never meets a conflict).
    /// </summary>
    public bool ResolvesConflicts(SubscriptionConfig sub, string set)
    {
        var s = Sets[set];
        if (s.Conflicts is not null || s.TablePolicies.Count > 0) return true;
        return s.MultiMaster && Subscriptions.Values.Any(o => o.From == sub.To && o.Sets.Contains(set));
    }

    /// <summary>Whether the subscription settles conflicts on any of its sets.</summary>
    public bool ResolvesConflicts(SubscriptionConfig sub) => sub.Sets.Any(set => ResolvesConflicts(sub, set));
}

/// <summary>A PostgreSQL node. <see cref="ConnInfo"/> is the libpq conninfo exactly as written in the file.</summary>
internal sealed record NodeConfig(string Name, string ConnInfo, int Line)
{
    /// <summary>
    /// <c>fenced: true</c>: the node left the topology at a failover (its transactions after that point never reached the
    /// others). It takes part in no subscription; navette keeps it read-only whenever it sees it, until <c>navette rejoin</c>.
    /// </summary>
    public bool Fenced { get; init; }

    /// <summary>
    /// Startup option of every navette session: a node kept read-only for its clients (an old origin after a switchover,
    /// a fenced node) still takes navette's own writes (applied changes, catalog, markers).
    /// </summary>
    public const string WritableOption = "-c default_transaction_read_only=off";

    /// <summary>The conninfo with any password replaced by <c>********</c>; safe for logs and error messages.</summary>
    public string RedactedConnInfo => global::Navette.Config.ConnInfo.Redact(ConnInfo);

    /// <summary>
    /// The conninfo converted to an Npgsql connection string (contains the password: never log it). Without
    /// pooling: navette's connections are long-lived (streams, apply sessions) or one-shot (apply, status, wait),
    /// and a pooled connection that outlived a restart of its node would fail the next command that takes it.
    /// </summary>
    public string ToNpgsqlConnectionString()
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder(global::Navette.Config.ConnInfo.ToNpgsql(ConnInfo)) { Pooling = false };
        b.Options = string.IsNullOrWhiteSpace(b.Options) ? WritableOption : b.Options + " " + WritableOption;
        return b.ConnectionString;
    }

    /// <summary>Never prints the password (records print every property by default).</summary>
    public override string ToString() =>
        $"NodeConfig {{ Name = {Name}, ConnInfo = {RedactedConnInfo}, Line = {Line}{(Fenced ? ", Fenced = True" : "")} }}";
}

/// <summary>A named group of tables (exact names or glob patterns) replicated together.</summary>
internal sealed record SetConfig(string Name, IReadOnlyList<TablePattern> Tables, int Line)
{
    /// <summary>The nodes that all write this set and replicate it to each other (<c>mesh:</c>), or null.</summary>
    public MeshConfig? Mesh { get; init; }

    /// <summary>How schema changes reach the set's replicas (<c>ddl:</c>; <see cref="DdlMode.Execute"/> unless given).</summary>
    public DdlMode Ddl { get; init; } = DdlMode.Execute;

    /// <summary>The set's conflict policy as written (<c>conflicts:</c>), or null when the file gives none.</summary>
    public Conflicts.ConflictPolicy? Conflicts { get; init; }

    /// <summary>Tables whose entry overrides the set's policy, in file order (the first match wins).</summary>
    public IReadOnlyList<TablePolicy> TablePolicies { get; init; } = [];

    /// <summary>
    /// Replicated in both directions between some nodes (a mesh, or explicit subscriptions both ways): conflicts are
    /// then detected and resolved, with <c>latest</c> unless the file says otherwise.
    /// </summary>
    public bool MultiMaster { get; init; }

    /// <summary>True when any entry of the set matches the table.</summary>
    public bool Matches(string schema, string table) => Tables.Any(t => t.Matches(schema, table));

    /// <summary>The policy applied to a table of this set, or null when its conflicts are not handled (one-way replication).</summary>
    public Conflicts.ConflictPolicy? PolicyFor(string schema, string table) =>
        TablePolicies.FirstOrDefault(t => t.Table.Matches(schema, table))?.Policy
        ?? Conflicts ?? (MultiMaster ? global::Navette.Conflicts.ConflictPolicy.Latest : null);

    /// <summary>Whether any table of the set has its conflicts handled.</summary>
    public bool HandlesConflicts => MultiMaster || Conflicts is not null || TablePolicies.Count > 0;

    /// <summary>
    /// <c>synchronous_quorum</c>: how many of the origin's synchronous subscriptions must have a commit before it returns
    /// (ANY N), or null for all of them. The line is kept for errors that concern the origin as a whole.
    /// </summary>
    public int? SynchronousQuorum { get; init; }

    /// <summary>The line of <c>synchronous_quorum</c> (0 when absent).</summary>
    public int SynchronousQuorumLine { get; init; }
}

/// <summary>A <c>tables</c> entry written as a mapping, with its own conflict policy.</summary>
internal sealed record TablePolicy(TablePattern Table, Conflicts.ConflictPolicy Policy);

/// <summary>
/// <c>mesh:</c> on a set. The first node is the seed: every other member gets its initial copy from it, and starts
/// reading the other members where the seed's copy left them, which is also how a node joins a running mesh.
/// </summary>
internal sealed record MeshConfig(IReadOnlyList<string> Nodes, bool InitialCopy, int CopyWorkers, bool CopySchema, int Line)
{
    public string Seed => Nodes[0];

    public static string SubscriptionName(string from, string to) => $"mesh_{from}_{to}";
}

/// <summary>
/// How a mesh subscription Y → X of a joining node X starts: where the seed's copy (seed → X) found the seed's own
/// subscription from Y (<see cref="SeedSubscription"/>, Y → seed) in its snapshot.
/// </summary>
internal sealed record MeshJoin(string CopySubscription, string SeedSubscription);

/// <summary>Replication of some sets from one node to another.</summary>
internal sealed record SubscriptionConfig(
    string Name,
    string From,
    string To,
    IReadOnlyList<string> Sets,
    bool InitialCopy,
    bool Forward,
    bool CopySchema,
    int CopyWorkers,
    int Line)
{
    /// <summary>Generated from a set's <c>mesh:</c> rather than written in the file.</summary>
    public bool Generated { get; init; }

    /// <summary>For a mesh member joining through the seed's copy: where this subscription starts (see <see cref="MeshJoin"/>).</summary>
    public MeshJoin? Join { get; init; }

    public const bool DefaultInitialCopy = true;
    public const bool DefaultForward = false;
    public const bool DefaultCopySchema = false;
    public const int DefaultCopyWorkers = 4;
    public const int MinCopyWorkers = 1;
    public const int MaxCopyWorkers = 64;

    /// <summary>
    /// <c>apply_timeout</c>: how long one statement of the apply may wait for a lock on the target (PostgreSQL's
    /// <c>lock_timeout</c> on the apply session). A table locked longer stops the subscription with an error naming the
    /// sessions that hold it; the worker retries with backoff and resumes once the lock is gone.
    /// </summary>
    public TimeSpan ApplyTimeout { get; init; } = DefaultApplyTimeout;

    public static readonly TimeSpan DefaultApplyTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// <c>max_transaction_memory</c>: a source transaction whose changes take more memory than this goes on in a temporary
    /// file (TMPDIR) and is applied from there block by block, which bounds the daemon's memory whatever the transaction's size.
    /// </summary>
    public long MaxTransactionMemory { get; init; } = DefaultMaxTransactionMemory;

    public const long DefaultMaxTransactionMemory = 64L << 20;
    public const long MinMaxTransactionMemory = 1L << 20;

    /// <summary>Lag threshold and WAL retention sizes: its own keys, else the monitoring section's.</summary>
    public SubscriptionLimits Limits { get; init; } = SubscriptionLimits.Default;

    /// <summary>
    /// <c>synchronous: true</c>: the origin lists this subscription's walsender (application_name
    /// <c>navette_&lt;name&gt;</c>) in synchronous_standby_names, so its commits return once the target has them.
    /// </summary>
    public bool Synchronous { get; init; }

    /// <summary>
    /// <c>degrade_after</c>: how long the target may be away or behind before the daemon takes it out of
    /// synchronous_standby_names (and puts it back once caught up); null to wait for it forever (PostgreSQL's semantics).
    /// </summary>
    public TimeSpan? DegradeAfter { get; init; }

    public const bool DefaultSynchronous = false;
}

/// <summary>How a physical standby receives the primary's WAL.</summary>
internal enum StandbyMode
{
    /// <summary>primary_conninfo: a walreceiver streams WAL as it is written.</summary>
    Streaming,

    /// <summary>restore_command: WAL segments come from an archive folder, one whole file at a time (warm standby).</summary>
    Archive,
}

/// <summary>
/// A PostgreSQL physical standby of node <see cref="From"/>, running from <see cref="PgData"/> on the machine
/// navette runs on. Navette connects to it at <see cref="Host"/>:<see cref="Port"/> with the rest of the node's
/// conninfo (user, database, password).
/// </summary>
internal sealed record StandbyConfig(
    string Name,
    string From,
    string PgData,
    int Port,
    string Host,
    StandbyMode Mode,
    bool Hot,
    bool Slot,
    string? Archive,
    string? Delay,
    int Line)
{
    public const string DefaultHost = "127.0.0.1";
    public const bool DefaultHot = false;
    public const bool DefaultSlot = false;

    /// <summary>The physical replication slot on <see cref="From"/> when <see cref="Slot"/> is set.</summary>
    public string SlotName => SlotNameFor(Name);

    public static string SlotNameFor(string standby) => "navette_standby_" + standby;

    /// <summary>
    /// The slot that <c>standby promote</c> leaves on the old primary so that its WAL from before the promotion is still
    /// there for <c>standby rewind OLD --from NAME</c> (pg_rewind reads it from the last checkpoint before the divergence).
    /// </summary>
    public static string RewindSlotNameFor(string promoted) => "navette_rewind_" + promoted;

    public static string ModeName(StandbyMode mode) => mode == StandbyMode.Archive ? "archive" : "streaming";
}
