using System.Security.Cryptography;
using System.Text;

namespace Navette.Conflicts;

/// <summary>
/// The total order the convergent policies rank row versions by. Every node ranks the same two versions the same
/// way, and each node's own successive writes of a row rank in the order they were made; together with the
/// re-sends of <see cref="ConflictPolicy.NeedsRebroadcast"/>, that is what makes every node keep the same row.
/// </summary>
internal static class VersionOrder
{
    /// <summary>Positive when <paramref name="a"/> outranks <paramref name="b"/>, zero when they are the same version.</summary>
    public static int Compare(RowVersion a, RowVersion b, ConflictPolicy policy, string table, string key)
    {
        switch (policy.Kind)
        {
            case ConflictPolicyKind.Priority:
            {
                var byWindow = Window(a, policy).CompareTo(Window(b, policy));
                if (byWindow != 0) return byWindow;
                var byRank = Rank(b.Node, policy).CompareTo(Rank(a.Node, policy));
                if (byRank != 0) return byRank;
                break;
            }
            case ConflictPolicyKind.Random:
            {
                var window = Window(a, policy);
                var byWindow = window.CompareTo(Window(b, policy));
                if (byWindow != 0) return byWindow;
                var byDraw = Draw(table, key, window, a.Node).CompareTo(Draw(table, key, window, b.Node));
                if (byDraw != 0) return byDraw;
                break;
            }
        }
        var byTime = a.CommitTime.CompareTo(b.CommitTime);
        // Equal times: the node whose name sorts first wins.
        return byTime != 0 ? byTime : string.CompareOrdinal(b.Node, a.Node);
    }

    /// <summary>Which conflict window (aligned on the clock) a version falls in.</summary>
    private static long Window(RowVersion v, ConflictPolicy policy) =>
        v.CommitTime == DateTime.MinValue ? long.MinValue : v.CommitTime.Ticks / Math.Max(1, policy.Window.Ticks);

    /// <summary>0 for the first node of the priority list; nodes not listed come after every listed one.</summary>
    private static int Rank(string node, ConflictPolicy policy)
    {
        for (var i = 0; i < policy.Priority.Count; i++)
            if (policy.Priority[i] == node) return i;
        return int.MaxValue;
    }

    /// <summary>The node's draw for a row in a window: the same on every node, different from row to row and window to window.</summary>
    internal static ulong Draw(string table, string key, long window, string node)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{table}\0{key}\0{window}\0{node}"), hash);
        return BitConverter.ToUInt64(hash);
    }
}
