namespace Navette.Standby;

/// <summary>One standby as <c>navette standby status</c> reports it (also its JSON shape).</summary>
/// <param name="State">streaming, catching up, archive recovery, starting, disconnected, down, promoted, unknown.</param>
/// <param name="ReceivedLsn">WAL received and flushed by the standby (streaming only).</param>
/// <param name="ReplayedLsn">WAL replayed; for a standby without hot_standby in archive mode, the start of the segment it waits for.</param>
/// <param name="LagBytes">The primary's current WAL position minus <paramref name="ReplayedLsn"/>.</param>
/// <param name="LagSeconds">
/// The walsender's replay_lag when streaming; otherwise, while behind, the time since the last transaction the standby
/// replayed committed (an upper bound: the primary may have written nothing but WAL switches since).
/// </param>
/// <param name="ArchiveBacklog">WAL files on the primary waiting for archive_command (.ready files).</param>
internal sealed record StandbyStatus(
    string Name,
    string From,
    string Mode,
    bool Hot,
    string State,
    string? Error,
    string? ReceivedLsn,
    string? ReplayedLsn,
    long? LagBytes,
    double? LagSeconds,
    DateTime? LastReplayedCommit,
    string? LastRestoredWal,
    string? Slot,
    bool? SlotActive,
    long? SlotRetainedBytes,
    int? ArchiveBacklog,
    string? LastArchivedWal,
    string? ArchiveError)
{
    /// <summary>States that make <c>navette status</c> exit non-zero.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsProblem => State is "down" or "disconnected" or "promoted" or "unknown";
}
