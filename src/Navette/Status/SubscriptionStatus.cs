namespace Navette.Status;

/// <summary>One subscription as <c>navette status</c> reports it (also its JSON shape, and the daemon's <c>/api/status</c>).</summary>
internal sealed record SubscriptionStatus(
    string Name,
    string From,
    string To,
    string State,
    string? Error,
    long? LagBytes,
    double? LagSeconds,
    DateTime? LastCommitTime,
    string? AppliedLsn,
    long RowsApplied,
    long TransactionsApplied,
    double RowsPerSecond,
    long? RetainedWalBytes,
    bool SlotActive,
    double LagThresholdSeconds,
    long WalRetentionWarnBytes,
    long? WalRetentionLimitBytes,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<CopyTableProgress> Copy)
{
    /// <summary>The slot's name on the origin.</summary>
    public string Slot => Sql.SlotName(Name);

    /// <summary>For a subscription with <c>synchronous: true</c>, how its origin waits for it; null for an asynchronous one.</summary>
    public SynchronousStatus? Synchronous { get; init; }
}

/// <summary>
/// A synchronous subscription seen from its origin: whether synchronous_standby_names lists it (false once degraded),
/// its walsender's <c>sync_state</c> and lags (pg_stat_replication; null without a walsender), the quorum, and the
/// origin's commits waiting for synchronous replication right now (pg_stat_activity, wait_event SyncRep) with the
/// longest wait so far (since its statement started).
/// </summary>
internal sealed record SynchronousStatus(
    bool Listed,
    string? SyncState,
    double? WriteLagSeconds,
    double? FlushLagSeconds,
    double? ReplayLagSeconds,
    int Quorum,
    int Of,
    double? DegradeAfterSeconds,
    string? OriginStandbyNames,
    long? OriginCommitsWaiting,
    double? OriginLongestWaitSeconds)
{
    /// <summary>The one word of the status table: the walsender's sync_state, else why it confirms nothing.</summary>
    public string Shown => !Listed ? "degraded" : SyncState ?? "away";
}

/// <summary>
/// One table of an initial copy, as the copy last wrote it to <c>navette.copy_progress</c> on the target.
/// <see cref="EstimatedRows"/> is the origin's planner estimate (null before the table was ever analysed).
/// </summary>
internal sealed record CopyTableProgress(string Table, long RowsCopied, long BytesCopied, long? EstimatedRows, bool Started, bool Finished)
{
    /// <summary>0..1, or null when there is no estimate; a finished table is 1 whatever the estimate said.</summary>
    public double? Fraction => Finished ? 1 : EstimatedRows is > 0 and var e ? Math.Min(0.99, RowsCopied / (double)e) : null;
}
