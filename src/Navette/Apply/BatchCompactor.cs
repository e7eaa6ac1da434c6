using Navette.Capture;

namespace Navette.Apply;

/// <summary>
/// Reduces a batch of source transactions to the net change per row: an INSERT then UPDATEs become one
/// INSERT, UPDATEs of one row become one UPDATE, an INSERT then DELETE disappears. Changes are then grouped by
/// table (order kept within a table), so runs of inserts become multi-row INSERTs.
/// <para>
/// The batch commits as one target transaction, so only its end state is ever visible, and with
/// <c>session_replication_role = replica</c> foreign keys are not checked during apply: the order between
/// rows only matters to unique constraints other than the key. The caller applies the original order when
/// the compacted one hits such a constraint.
/// </para>
/// </summary>
internal static class BatchCompactor
{
    private readonly record struct RowKey(SourceRelation Relation, string?[] Values)
    {
        public bool Equals(RowKey other) => ReferenceEquals(Relation, other.Relation) && Values.AsSpan().SequenceEqual(other.Values);

        public override int GetHashCode()
        {
            var h = new HashCode();
            h.Add(Relation);
            foreach (var v in Values) h.Add(v);
            return h.ToHashCode();
        }
    }

    /// <summary>Returns the changes to apply, in an order valid for one target transaction.</summary>
    public static List<RowChange> Compact(IReadOnlyList<SourceTransaction> transactions, out int sourceChanges)
    {
        sourceChanges = 0;
        foreach (var tx in transactions) sourceChanges += tx.Changes.Count;
        // Each change adds at most one entry: sized once instead of grown through doublings.
        var output = new List<RowChange?>(sourceChanges);
        var latest = new Dictionary<RowKey, int>();
        var result = new List<RowChange>(sourceChanges);

        foreach (var tx in transactions)
        {
            foreach (var change in tx.Changes)
            {
                if (change.Kind == ChangeKind.Truncate)
                {
                    // A barrier: what came before it is applied before it, as it was.
                    Flush(output, result);
                    latest.Clear();
                    result.Add(change);
                    continue;
                }
                if (change.Relation.IdentityFull || change.Relation.KeyColumns.Length == 0)
                {
                    output.Add(change);
                    continue;
                }
                Merge(change, output, latest);
            }
        }
        Flush(output, result);
        return result;
    }

    private static void Merge(RowChange change, List<RowChange?> output, Dictionary<RowKey, int> latest)
    {
        var rel = change.Relation;
        var newKey = change.New is null ? null : KeyOf(rel, change.New);
        var oldKey = change.Old is null ? newKey : KeyOf(rel, change.Old);
        var identity = new RowKey(rel, (oldKey ?? newKey)!);
        var keyChanged = change.Kind == ChangeKind.Update && newKey is not null && oldKey is not null && !newKey.AsSpan().SequenceEqual(oldKey);
        var hasPrevious = latest.TryGetValue(identity, out var at) && output[at] is not null;
        var previous = hasPrevious ? output[at] : null;

        switch (change.Kind)
        {
            case ChangeKind.Insert:
                latest[new RowKey(rel, newKey!)] = output.Count;
                output.Add(change);
                return;

            case ChangeKind.Update when !keyChanged && previous is { Kind: ChangeKind.Insert or ChangeKind.Update }:
                output[at] = new RowChange
                {
                    Kind = previous.Kind, Relation = rel, Old = previous.Old,
                    New = Overlay(previous.New!, change.New!),
                };
                return;

            case ChangeKind.Update:
                if (keyChanged) latest.Remove(identity);
                latest[new RowKey(rel, newKey!)] = output.Count;
                output.Add(change);
                return;

            case ChangeKind.Delete when previous is { Kind: ChangeKind.Insert }:
                output[at] = null;
                latest.Remove(identity);
                return;

            case ChangeKind.Delete when previous is { Kind: ChangeKind.Update }:
                // The row existed before the batch under the update's old identity: delete that.
                output[at] = new RowChange { Kind = ChangeKind.Delete, Relation = rel, Old = previous.Old ?? KeyImage(rel, previous.New!) };
                latest[identity] = at;
                return;

            default:
                latest[identity] = output.Count;
                output.Add(change);
                return;
        }
    }

    /// <summary>The later image, where columns it left unchanged (TOAST) take the earlier image's value.</summary>
    private static RowImage Overlay(RowImage earlier, RowImage later)
    {
        if (later.Unchanged is null) return later;
        var values = (string?[])later.Values.Clone();
        bool[]? unchanged = null;
        for (var i = 0; i < values.Length; i++)
        {
            if (!later.Unchanged[i]) continue;
            if (earlier.IsUnchanged(i))
            {
                unchanged ??= new bool[values.Length];
                unchanged[i] = true;
            }
            else
            {
                values[i] = earlier.Values[i];
            }
        }
        return new RowImage(values, unchanged);
    }

    private static string?[] KeyOf(SourceRelation rel, RowImage image)
    {
        var key = new string?[rel.KeyColumns.Length];
        for (var i = 0; i < key.Length; i++) key[i] = image.Values[rel.KeyColumns[i]];
        return key;
    }

    private static RowImage KeyImage(SourceRelation rel, RowImage image)
    {
        var values = new string?[image.Values.Length];
        foreach (var k in rel.KeyColumns) values[k] = image.Values[k];
        return new RowImage(values, null);
    }

    /// <summary>Moves the pending changes to <paramref name="result"/>, grouped by table in first-seen order.</summary>
    private static void Flush(List<RowChange?> output, List<RowChange> result)
    {
        var order = new Dictionary<SourceRelation, List<RowChange>>();
        foreach (var c in output)
        {
            if (c is null) continue;
            if (!order.TryGetValue(c.Relation, out var list)) order[c.Relation] = list = new List<RowChange>();
            list.Add(c);
        }
        foreach (var list in order.Values) result.AddRange(list);
        output.Clear();
    }
}
