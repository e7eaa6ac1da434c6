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
    /// <summary>The changes in source order; empty when they were spilled to disk (<see cref="Spilled"/>).</summary>
    public required List<RowChange> Changes { get; init; }
    /// <summary>Set for a transaction larger than max_transaction_memory: its changes are in this file instead.</summary>
    public SpilledChanges? Spilled { get; init; }
    public int ChangeCount => Spilled?.Count ?? Changes.Count;
    public long ApproximateBytes { get; init; }
    /// <summary>What of <see cref="ApproximateBytes"/> is held in memory (not spilled).</summary>
    public long MemoryBytes { get; init; }
}
