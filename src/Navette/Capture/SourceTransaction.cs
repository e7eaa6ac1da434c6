using NpgsqlTypes;

namespace Navette.Capture;

/// <summary>One committed origin transaction, decoded.</summary>
internal sealed class SourceTransaction
{
    public required uint Xid { get; init; }
    public required NpgsqlLogSequenceNumber CommitLsn { get; init; }
    /// <summary>End of the commit record: the position streaming resumes from once this is applied.</summary>
    public required NpgsqlLogSequenceNumber EndLsn { get; init; }
    public required DateTime CommitTime { get; init; }
    /// <summary>Replication origin of the transaction on the source node (set when it was itself replicated there).</summary>
    public string? OriginName { get; init; }
    public required List<RowChange> Changes { get; init; }
    public long ApproximateBytes { get; init; }
}
