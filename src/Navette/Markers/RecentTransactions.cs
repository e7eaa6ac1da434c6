using Navette.Capture;
using NpgsqlTypes;

namespace Navette.Markers;

/// <remarks>Transactions committed after the snapshot have commit records after the WAL position read with it
/// (<c>snap_lsn</c>), so the history covers them when it is complete from before that position.</remarks>
/// <summary>
/// The last source transactions a subscription applied, with the keys each changed per table. A marker's origin side
/// was computed under a snapshot taken a moment before the marker committed; the transactions that committed in
/// between reached the target before the marker, and this tells which keys they touched.
/// </summary>
internal sealed class RecentTransactions(int capacity = 4096)
{
    private readonly Queue<(uint Xid, NpgsqlLogSequenceNumber Commit, Dictionary<SourceRelation, List<string?[]>> Keys)> _entries = new();
    private readonly Lock _lock = new();
    /// <summary>Every transaction committed at or after this position and applied is in the history.</summary>
    private NpgsqlLogSequenceNumber _completeFrom = NpgsqlLogSequenceNumber.Invalid;
    private bool _started;

    /// <summary>A new stream starts at <paramref name="start"/>: what was applied before is not known.</summary>
    public void Restart(NpgsqlLogSequenceNumber start)
    {
        lock (_lock)
        {
            _entries.Clear();
            _completeFrom = start;
            _started = true;
        }
    }

    public void Add(SourceTransaction tx)
    {
        var keys = new Dictionary<SourceRelation, List<string?[]>>();
        foreach (var c in tx.Changes)
        {
            if (c.Kind == ChangeKind.Truncate || c.Relation.KeyColumns.Length == 0) continue;
            if (!keys.TryGetValue(c.Relation, out var list)) keys[c.Relation] = list = new List<string?[]>();
            if (c.Old is not null) list.Add(KeyOf(c.Relation, c.Old));
            if (c.New is not null) list.Add(KeyOf(c.Relation, c.New));
        }
        // Truncates and tables without a key: every key of the table counts as touched.
        foreach (var c in tx.Changes.Where(c => c.Kind == ChangeKind.Truncate || c.Relation.KeyColumns.Length == 0))
            foreach (var rel in c.TruncatedRelations ?? [c.Relation])
                keys[rel] = [null!];
        // A transaction spilled to disk is too large to list its keys: every table it wrote counts as touched whole.
        foreach (var rel in tx.Spilled?.Relations ?? [])
            keys[rel] = [null!];
        lock (_lock)
        {
            _entries.Enqueue((tx.Xid, tx.CommitLsn, keys));
            while (_entries.Count > capacity) _completeFrom = _entries.Dequeue().Commit;
        }
    }

    /// <summary>
    /// True when the history reaches back past the snapshot: it holds a transaction the snapshot sees, so every one
    /// applied after it (those the snapshot may have missed) is here too. False after a restart of the stream.
    /// </summary>
    public bool Covers(NpgsqlLogSequenceNumber snapshotLsn)
    {
        lock (_lock) return _started && _completeFrom <= snapshotLsn;
    }

    /// <summary>
    /// The keys of <paramref name="schema"/>.<paramref name="table"/> changed by applied transactions the snapshot did
    /// not see. A null entry means "the whole table" (a truncate, or a table without key).
    /// </summary>
    public List<string?[]?> KeysUnseenBy(Snapshot snapshot, string schema, string table)
    {
        var result = new List<string?[]?>();
        lock (_lock)
        foreach (var (xid, _, keys) in _entries)
        {
            if (snapshot.Sees(xid)) continue;
            foreach (var (rel, list) in keys)
                if (rel.Schema == schema && rel.Name == table)
                    result.AddRange(list);
        }
        return result;
    }

    private static string?[] KeyOf(SourceRelation rel, RowImage image)
    {
        var key = new string?[rel.KeyColumns.Length];
        for (var i = 0; i < key.Length; i++) key[i] = image.Values[rel.KeyColumns[i]];
        return key;
    }
}

/// <summary>A PostgreSQL snapshot (pg_snapshot: xmin, xmax, in-progress list), compared on 32-bit xids with wraparound.</summary>
internal sealed record Snapshot(uint Xmin, uint Xmax, HashSet<uint> InProgress)
{
    public static uint Xid32(ulong xid8) => (uint)(xid8 & 0xffffffff);

    public bool Sees(uint xid) =>
        Precedes(xid, Xmin) || (Precedes(xid, Xmax) && !InProgress.Contains(xid));

    private static bool Precedes(uint a, uint b) => (int)(a - b) < 0;
}
