namespace Navette.Config;

/// <summary>
/// A fully validated configuration. Every dictionary iterates in file order.
/// Instances are only produced by <see cref="ConfigLoader"/> once the whole file is known to be valid.
/// </summary>
internal sealed record NavetteConfig(
    string SourcePath,
    IReadOnlyDictionary<string, NodeConfig> Nodes,
    IReadOnlyDictionary<string, SetConfig> Sets,
    IReadOnlyDictionary<string, SubscriptionConfig> Subscriptions);

/// <summary>A PostgreSQL node. <see cref="ConnInfo"/> is the libpq conninfo exactly as written in the file.</summary>
internal sealed record NodeConfig(string Name, string ConnInfo, int Line)
{
    /// <summary>The conninfo with any password replaced by <c>********</c>; safe for logs and error messages.</summary>
    public string RedactedConnInfo => global::Navette.Config.ConnInfo.Redact(ConnInfo);

    /// <summary>
    /// The conninfo converted to an Npgsql connection string (contains the password: never log it). Without
    /// pooling: navette's connections are long-lived (streams, apply sessions) or one-shot (apply, status, wait),
    /// and a pooled connection that outlived a restart of its node would fail the next command that takes it.
    /// </summary>
    public string ToNpgsqlConnectionString() =>
        new Npgsql.NpgsqlConnectionStringBuilder(global::Navette.Config.ConnInfo.ToNpgsql(ConnInfo)) { Pooling = false }.ConnectionString;

    /// <summary>Never prints the password (records print every property by default).</summary>
    public override string ToString() =>
        $"NodeConfig {{ Name = {Name}, ConnInfo = {RedactedConnInfo}, Line = {Line} }}";
}

/// <summary>A named group of tables (exact names or glob patterns) replicated together.</summary>
internal sealed record SetConfig(string Name, IReadOnlyList<TablePattern> Tables, int Line)
{
    /// <summary>True when any entry of the set matches the table.</summary>
    public bool Matches(string schema, string table) => Tables.Any(t => t.Matches(schema, table));
}

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
    public const bool DefaultInitialCopy = true;
    public const bool DefaultForward = false;
    public const bool DefaultCopySchema = false;
    public const int DefaultCopyWorkers = 4;
    public const int MinCopyWorkers = 1;
    public const int MaxCopyWorkers = 64;
}
