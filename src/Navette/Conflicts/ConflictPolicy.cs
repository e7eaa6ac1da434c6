namespace Navette.Conflicts;

/// <summary>How a conflict between an incoming change and the local row is settled.</summary>
internal enum ConflictPolicyKind
{
    /// <summary>The version with the later commit time wins; equal times go to the node whose name sorts first.</summary>
    Latest,
    /// <summary>Within one conflict window, the version from the node listed first in the priority list wins.</summary>
    Priority,
    /// <summary>Within one conflict window, a winner drawn from a hash of the table, key, window and node.</summary>
    Random,
    /// <summary>The incoming change always wins (does not converge when nodes write the same rows).</summary>
    Incoming,
    /// <summary>The local row always wins where there is one (does not converge).</summary>
    Local,
    /// <summary>The incoming change is dropped in every conflict (does not converge).</summary>
    Skip,
    /// <summary>The subscription stops at the conflict until an operator decides it.</summary>
    Abort,
    /// <summary>A user SQL function returns the row to keep.</summary>
    Custom,
}

/// <summary>
/// A conflict policy for a set or a table. <see cref="Priority"/> is the node order for <c>priority</c>;
/// <see cref="Window"/> bounds what <c>priority</c> and <c>random</c> treat as simultaneous; <see cref="Function"/>
/// is the qualified SQL function for <c>custom</c>.
/// </summary>
internal sealed record ConflictPolicy(ConflictPolicyKind Kind, IReadOnlyList<string> Priority, TimeSpan Window, string? Function)
{
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromSeconds(5);

    public static ConflictPolicy Latest { get; } = new(ConflictPolicyKind.Latest, [], DefaultWindow, null);

    /// <summary>Policies under which every node ends with the same rows once writers stop.</summary>
    public bool Converges => Kind is ConflictPolicyKind.Latest or ConflictPolicyKind.Priority or ConflictPolicyKind.Random;

    /// <summary>
    /// Policies whose order can rank a node's own later write below the version it overwrote (a lower node writing
    /// after a higher one in the same window): the winner's node must send its row again so the writer comes back in line.
    /// </summary>
    public bool NeedsRebroadcast => Kind is ConflictPolicyKind.Priority or ConflictPolicyKind.Random;

    public string Name => Kind.ToString().ToLowerInvariant();

    /// <summary>Parses a policy name as written in the file (lower case).</summary>
    public static bool TryParseKind(string text, out ConflictPolicyKind kind)
    {
        foreach (var k in Enum.GetValues<ConflictPolicyKind>())
            if (k.ToString().ToLowerInvariant() == text) { kind = k; return true; }
        kind = default;
        return false;
    }

    public static IEnumerable<string> KindNames => Enum.GetValues<ConflictPolicyKind>().Select(k => k.ToString().ToLowerInvariant());

    public override string ToString() => Kind switch
    {
        ConflictPolicyKind.Priority => $"priority [{string.Join(", ", Priority)}]",
        ConflictPolicyKind.Custom => $"custom {Function}",
        _ => Name,
    };
}
