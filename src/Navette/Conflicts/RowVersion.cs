namespace Navette.Conflicts;

/// <summary>
/// Who wrote a row (or a delete) last, and when: the commit time PostgreSQL recorded for the transaction that wrote
/// it (the origin's commit time for replicated writes) and the node where that transaction ran.
/// </summary>
internal readonly record struct RowVersion(DateTime CommitTime, string Node)
{
    /// <summary>A row whose writer PostgreSQL no longer knows (frozen, or older than commit timestamps go): it loses to any version.</summary>
    public static RowVersion Unknown(string node) => new(DateTime.MinValue, node);

    public override string ToString() => CommitTime == DateTime.MinValue
        ? $"{Node} (commit time unknown)"
        : $"{Node} at {CommitTime:yyyy-MM-dd HH:mm:ss.ffffff}";
}
