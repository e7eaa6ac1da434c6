namespace Navette.Conflicts;

/// <summary>What becomes of an incoming change that conflicts.</summary>
internal enum Resolution
{
    /// <summary>The incoming change is applied (for a missing row, the row it carries is inserted).</summary>
    ApplyIncoming,
    /// <summary>The local row (or the local delete) stays; the incoming change is dropped.</summary>
    KeepLocal,
    /// <summary>The policy's function decides the row to keep.</summary>
    Merge,
    /// <summary>The subscription stops here until an operator decides.</summary>
    Abort,
}

/// <summary>
/// <see cref="Rebroadcast"/>: the local version won and was written on this node, so this node sends it again for the
/// node whose change lost (which otherwise keeps its own write).
/// </summary>
internal readonly record struct ConflictDecision(Resolution Resolution, bool Rebroadcast = false);

/// <summary>The policies' decisions, as a pure function of the two versions: every node decides a conflict the same way.</summary>
internal static class ConflictResolver
{
    /// <param name="local">The local version the change collides with (a row or a delete), null when nothing of the key is known here.</param>
    public static ConflictDecision Decide(ConflictPolicy policy, RowVersion incoming, RowVersion? local, string localNode, string table, string key)
    {
        switch (policy.Kind)
        {
            case ConflictPolicyKind.Abort:
                return new(Resolution.Abort);
            case ConflictPolicyKind.Custom:
                return new(Resolution.Merge);
            case ConflictPolicyKind.Incoming:
                return new(Resolution.ApplyIncoming);
            case ConflictPolicyKind.Local:
                return new(local is null ? Resolution.ApplyIncoming : Resolution.KeepLocal);
            case ConflictPolicyKind.Skip:
                return new(Resolution.KeepLocal);
            default:
                if (local is not { } l || VersionOrder.Compare(incoming, l, policy, table, key) >= 0)
                    return new(Resolution.ApplyIncoming);
                return new(Resolution.KeepLocal, policy.NeedsRebroadcast && l.Node == localNode);
        }
    }
}
