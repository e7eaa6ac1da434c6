namespace Navette.Capture;

internal enum ChangeKind : byte { Insert, Update, Delete, Truncate }

/// <summary>
/// A change to one row. For UPDATE and DELETE, <see cref="Old"/> holds the replica identity values (key
/// columns only, or every column for REPLICA IDENTITY FULL); it is null for an UPDATE that did not change
/// the key, in which case the key is read from <see cref="New"/>.
/// </summary>
internal sealed class RowChange
{
    public required ChangeKind Kind { get; init; }
    public required SourceRelation Relation { get; init; }
    public RowImage? New { get; init; }
    public RowImage? Old { get; init; }
    /// <summary>For TRUNCATE: every relation truncated together.</summary>
    public SourceRelation[]? TruncatedRelations { get; init; }
    public bool TruncateRestartIdentity { get; init; }
    public bool TruncateCascade { get; init; }
}
