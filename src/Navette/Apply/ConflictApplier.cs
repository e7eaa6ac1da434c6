using System.Text;
using Microsoft.Extensions.Logging;
using Navette.Capture;
using Navette.Conflicts;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Apply;

/// <summary>
/// Turns one source transaction into the writes that settle it on a target whose tables' conflicts are handled:
/// reads the local state of every key it touches (row version, or the delete that removed it), detects each conflict,
/// decides it by the table's policy and returns the row changes to write with the statements that go with them
/// (tombstones, conflict log, re-sends). Runs inside the apply transaction, which also carries the origin's commit
/// time: the rows it writes keep the version they had on the node that wrote them.
/// </summary>
internal sealed class ConflictApplier(
    string subscription, string fromNode, ConflictRules rules, OriginMap origins, string targetConnectionString, ILogger log)
{
    private bool _originsLoaded;

    internal sealed class Plan
    {
        public List<RowChange> Changes { get; } = new();
        public List<(string Sql, NpgsqlParameter[] Parameters)> Statements { get; } = new();
        public int Conflicts { get; set; }
        public bool Rebroadcasts { get; set; }
    }

    /// <summary>What is known of one key of one table: a live row, a remembered delete, or nothing.</summary>
    private sealed class KeyState
    {
        public bool Live;
        public RowVersion Version;
        /// <summary>
        /// The row's writer cannot be told (its transaction is frozen or older than the commit timestamps kept, or its
        /// origin was dropped, as an initial copy's are): a change to it is applied as from its own writer.
        /// </summary>
        public bool Unknown;
        /// <summary>The local row as jsonb text (read only for rows written by another node than the incoming one).</summary>
        public string? Json;
        public string? Xmin;
        public RowVersion? Tombstone;
        /// <summary>What the plan does to the key's tombstone: true writes it (this version), false removes it.</summary>
        public bool? TombstoneWrite;
    }

    private readonly record struct Key(SourceRelation Relation, string?[] Values)
    {
        public bool Equals(Key other) => ReferenceEquals(Relation, other.Relation) && Values.AsSpan().SequenceEqual(other.Values);

        public override int GetHashCode()
        {
            var h = new HashCode();
            h.Add(Relation);
            foreach (var v in Values) h.Add(v);
            return h.ToHashCode();
        }
    }

    public async Task<Plan> PlanAsync(NpgsqlConnection conn, NpgsqlTransaction tx, SourceTransaction source,
        Func<SourceRelation, Task<TargetTable>> targetOf, CancellationToken ct)
    {
        var plan = new Plan();
        var keys = new Dictionary<SourceRelation, List<string?[]>>();
        var states = new Dictionary<Key, KeyState>();
        foreach (var c in source.Changes)
        {
            if (c.Kind == ChangeKind.Truncate || rules.PolicyFor(c.Relation) is null) continue;
            foreach (var k in KeysOf(c))
            {
                if (states.ContainsKey(new Key(c.Relation, k))) continue;
                states[new Key(c.Relation, k)] = new KeyState();
                if (!keys.TryGetValue(c.Relation, out var list)) keys[c.Relation] = list = new List<string?[]>();
                list.Add(k);
            }
        }
        if (keys.Count == 0)
        {
            plan.Changes.AddRange(source.Changes);
            return plan;
        }
        if (!_originsLoaded)
        {
            await origins.LoadAsync(conn, tx, ct);
            _originsLoaded = true;
        }
        var targets = new Dictionary<SourceRelation, TargetTable>();
        foreach (var rel in keys.Keys) targets[rel] = await targetOf(rel);
        var unknown = new HashSet<uint>();
        if (!await LookupAsync(conn, tx, keys, targets, states, unknown, ct))
        {
            // A row was written under a replication origin created after this session read the list, or since dropped.
            await origins.LoadAsync(conn, tx, ct);
            origins.MarkDropped(unknown);
            foreach (var s in states.Values) { s.Live = false; s.Tombstone = null; s.Unknown = false; }
            await LookupAsync(conn, tx, keys, targets, states, unknown, ct);
        }

        var incoming = new RowVersion(source.CommitTime, fromNode);
        foreach (var c in source.Changes)
        {
            var policy = c.Kind == ChangeKind.Truncate ? null : rules.PolicyFor(c.Relation);
            if (policy is null)
            {
                plan.Changes.Add(c);
                continue;
            }
            var target = targets[c.Relation];
            switch (c.Kind)
            {
                case ChangeKind.Insert:
                    await InsertAsync(conn, tx, plan, c, c.New!, states[new Key(c.Relation, KeyOf(c.Relation, c.New!))], target, policy, source, incoming, ct);
                    break;
                case ChangeKind.Update when KeyChanged(c):
                    await KeyChangeAsync(conn, tx, plan, c, states, target, policy, source, incoming, ct);
                    break;
                case ChangeKind.Update:
                    await UpdateAsync(conn, tx, plan, c, states[new Key(c.Relation, KeyOf(c.Relation, c.Old ?? c.New!))], target, policy, source, incoming, ct);
                    break;
                case ChangeKind.Delete:
                    await DeleteAsync(conn, tx, plan, c, states[new Key(c.Relation, KeyOf(c.Relation, c.Old!))], target, policy, source, incoming, ct);
                    break;
            }
        }

        foreach (var (key, state) in states)
        {
            if (state.TombstoneWrite is not { } write) continue;
            plan.Statements.Add(write ? ConflictSql.WriteTombstone(targets[key.Relation], key.Relation, key.Values) : ConflictSql.RemoveTombstone(targets[key.Relation], key.Relation, key.Values));
        }
        return plan;
    }

    // ------------------------------------------------------------ per change

    private async Task InsertAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Plan plan, RowChange c, RowImage row, KeyState st, TargetTable target,
        ConflictPolicy policy, SourceTransaction source, RowVersion incoming, CancellationToken ct)
    {
        if (st.Live)
        {
            var d = await DecideAsync(conn, tx, plan, ConflictType.InsertExists, c, st, st.Version, target, policy, source, incoming, ct);
            switch (d.Resolution)
            {
                case Resolution.ApplyIncoming:
                    plan.Changes.Add(new RowChange { Kind = ChangeKind.Update, Relation = c.Relation, New = row });
                    Written(st, incoming);
                    break;
                case Resolution.KeepLocal when d.Rebroadcast:
                    QueueRowResend(plan, c.Relation, target, KeyOf(c.Relation, row), st);
                    break;
                case Resolution.Merge:
                    await MergeAsync(conn, tx, plan, ConflictType.InsertExists, c, row, st, target, policy, source, incoming, ct);
                    break;
            }
            return;
        }
        if (st.Tombstone is { } deleted && deleted.Node != fromNode)
        {
            var d = await DecideAsync(conn, tx, plan, ConflictType.InsertDeleted, c, st, deleted, target, policy, source, incoming, ct);
            switch (d.Resolution)
            {
                case Resolution.ApplyIncoming:
                    plan.Changes.Add(new RowChange { Kind = ChangeKind.Insert, Relation = c.Relation, New = row });
                    Written(st, incoming);
                    break;
                case Resolution.KeepLocal when d.Rebroadcast:
                    QueueDeleteResend(plan, c.Relation, target, row, KeyOf(c.Relation, row));
                    break;
                case Resolution.Merge:
                    await MergeAsync(conn, tx, plan, ConflictType.InsertDeleted, c, row, st, target, policy, source, incoming, ct);
                    break;
            }
            return;
        }
        plan.Changes.Add(c.Kind == ChangeKind.Insert ? c : new RowChange { Kind = ChangeKind.Insert, Relation = c.Relation, New = row });
        Written(st, incoming);
    }

    private async Task UpdateAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Plan plan, RowChange c, KeyState st, TargetTable target,
        ConflictPolicy policy, SourceTransaction source, RowVersion incoming, CancellationToken ct)
    {
        if (st.Live && (st.Unknown || st.Version.Node == fromNode))
        {
            plan.Changes.Add(c);
            Written(st, incoming);
            return;
        }
        var type = st.Live ? ConflictType.UpdateUpdate : st.Tombstone is not null ? ConflictType.UpdateDelete : ConflictType.UpdateMissing;
        var local = st.Live ? st.Version : st.Tombstone;
        var d = await DecideAsync(conn, tx, plan, type, c, st, local, target, policy, source, incoming, ct);
        switch (d.Resolution)
        {
            case Resolution.ApplyIncoming when st.Live:
                plan.Changes.Add(c);
                Written(st, incoming);
                break;
            case Resolution.ApplyIncoming when c.New!.Unchanged is null:
                // No row here to update: the row the change carries is inserted (its insert may still be on its way
                // by another path; it then meets this row as insert_exists and loses to the later version).
                plan.Changes.Add(new RowChange { Kind = ChangeKind.Insert, Relation = c.Relation, New = c.New });
                Written(st, incoming);
                break;
            case Resolution.ApplyIncoming:
                log.LogWarning("subscription {Subscription}: {Type} on {Table} {Key}: the incoming row is not complete (unchanged TOAST values were not sent), so it cannot be inserted; skipped",
                    subscription, type.Name(), c.Relation, ApplyWriter.KeyText(c));
                break;
            case Resolution.KeepLocal when d.Rebroadcast && st.Live:
                QueueRowResend(plan, c.Relation, target, KeyOf(c.Relation, c.Old ?? c.New!), st);
                break;
            case Resolution.KeepLocal when d.Rebroadcast && c.New!.Unchanged is null:
                QueueDeleteResend(plan, c.Relation, target, c.New, KeyOf(c.Relation, c.Old ?? c.New));
                break;
            case Resolution.Merge:
                await MergeAsync(conn, tx, plan, type, c, c.New!, st, target, policy, source, incoming, ct);
                break;
        }
    }

    /// <summary>
    /// An UPDATE that moves a row to another key. From the row's own origin onto a free key it is applied as it is;
    /// otherwise it is settled as a conflict on the old key, and when the incoming change wins the row ends under the
    /// new key either way.
    /// </summary>
    private async Task KeyChangeAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Plan plan, RowChange c, Dictionary<Key, KeyState> states, TargetTable target,
        ConflictPolicy policy, SourceTransaction source, RowVersion incoming, CancellationToken ct)
    {
        var oldState = states[new Key(c.Relation, KeyOf(c.Relation, c.Old!))];
        var newState = states[new Key(c.Relation, KeyOf(c.Relation, c.New!))];
        if (oldState.Live && (oldState.Unknown || oldState.Version.Node == fromNode) && !newState.Live)
        {
            plan.Changes.Add(c);
            oldState.Live = false;
            Written(newState, incoming);
            return;
        }
        var type = oldState.Live ? ConflictType.UpdateUpdate : oldState.Tombstone is not null ? ConflictType.UpdateDelete : ConflictType.UpdateMissing;
        var d = await DecideAsync(conn, tx, plan, type, c, oldState, oldState.Live ? oldState.Version : oldState.Tombstone, target, policy, source, incoming, ct);
        if (d.Resolution == Resolution.KeepLocal && d.Rebroadcast && oldState.Live)
            QueueRowResend(plan, c.Relation, target, KeyOf(c.Relation, c.Old!), oldState);
        if (d.Resolution is not (Resolution.ApplyIncoming or Resolution.Merge)) return;
        if (oldState.Live)
        {
            plan.Changes.Add(new RowChange { Kind = ChangeKind.Delete, Relation = c.Relation, Old = c.Old });
            oldState.Live = false;
        }
        if (c.New!.Unchanged is not null)
        {
            log.LogWarning("subscription {Subscription}: {Type} on {Table} {Key}: the row moved to a new key but unchanged TOAST values were not sent; the new row cannot be written",
                subscription, type.Name(), c.Relation, ApplyWriter.KeyText(c));
            return;
        }
        plan.Changes.Add(new RowChange { Kind = newState.Live ? ChangeKind.Update : ChangeKind.Insert, Relation = c.Relation, New = c.New });
        Written(newState, incoming);
    }

    private async Task DeleteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Plan plan, RowChange c, KeyState st, TargetTable target,
        ConflictPolicy policy, SourceTransaction source, RowVersion incoming, CancellationToken ct)
    {
        if (st.Live && (st.Unknown || st.Version.Node == fromNode))
        {
            plan.Changes.Add(c);
            Deleted(st, incoming);
            return;
        }
        var type = st.Live ? ConflictType.DeleteUpdate : ConflictType.DeleteMissing;
        var d = await DecideAsync(conn, tx, plan, type, c, st, st.Live ? st.Version : st.Tombstone, target, policy, source, incoming, ct);
        switch (d.Resolution)
        {
            case Resolution.ApplyIncoming:
                if (st.Live) plan.Changes.Add(c);
                Deleted(st, incoming);
                break;
            case Resolution.KeepLocal when d.Rebroadcast && st.Live:
                QueueRowResend(plan, c.Relation, target, KeyOf(c.Relation, c.Old!), st);
                break;
            case Resolution.Merge:
                await MergeAsync(conn, tx, plan, type, c, null, st, target, policy, source, incoming, ct);
                break;
        }
    }

    private static void Written(KeyState st, RowVersion version)
    {
        st.Live = true;
        st.Unknown = false;
        st.Version = version;
        st.Json = null;
        st.Xmin = null;
        if (st.Tombstone is not null) st.TombstoneWrite = false;
        st.Tombstone = null;
    }

    private static void Deleted(KeyState st, RowVersion version)
    {
        st.Live = false;
        st.Tombstone = version;
        st.TombstoneWrite = true;
    }

    // ------------------------------------------------------------ decisions

    private async Task<ConflictDecision> DecideAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Plan plan, ConflictType type, RowChange c, KeyState st, RowVersion? local,
        TargetTable target, ConflictPolicy policy, SourceTransaction source, RowVersion incoming, CancellationToken ct)
    {
        var keyText = KeyJson(c);
        var decision = ConflictResolver.Decide(policy, incoming, local, origins.LocalNode, target.QualifiedName, keyText);
        plan.Conflicts++;
        string outcome;
        if (decision.Resolution == Resolution.Abort)
        {
            var (id, choice) = await OperatorDecisionAsync(conn, tx, type, c, target, source, ct);
            if (choice is null)
                throw await AbortAsync(type, c, st, local, target, policy, source, ct);
            decision = new ConflictDecision(choice == "incoming" ? Resolution.ApplyIncoming : Resolution.KeepLocal);
            plan.Statements.Add(("UPDATE navette.conflict_log SET outcome = 'resolved', resolved_at = now() WHERE id = $1",
                [new NpgsqlParameter { Value = id }]));
            log.LogInformation("subscription {Subscription}: {Type} on {Table} {Key} resolved as the operator decided ({Decision})",
                subscription, type.Name(), c.Relation, ApplyWriter.KeyText(c), choice);
            return decision;
        }
        outcome = decision.Resolution switch
        {
            Resolution.ApplyIncoming => "applied_incoming",
            Resolution.KeepLocal => "kept_local",
            _ => "merged",
        };
        if (decision.Rebroadcast) plan.Rebroadcasts = true;
        plan.Statements.Add(ConflictSql.Log(subscription, type, c, target, st.Json, local, incoming, source.CommitLsn, policy, outcome));
        if (log.IsEnabled(LogLevel.Debug))
            log.LogDebug("subscription {Subscription}: {Type} on {Table} {Key}: local {Local}, incoming {Incoming}; {Policy}: {Outcome}",
                subscription, type.Name(), c.Relation, ApplyWriter.KeyText(c), local?.ToString() ?? "none", incoming, policy, outcome);
        return decision;
    }

    /// <summary>The key as the conflict log and the draws of <c>random</c> see it: the key columns' text, in order.</summary>
    private static string KeyJson(RowChange c)
    {
        var image = c.Old ?? c.New!;
        var sb = new StringBuilder();
        foreach (var k in c.Relation.KeyColumns) sb.Append(image.Values[k]).Append('\u001f');
        return sb.ToString();
    }

    private async Task<(long Id, string? Decision)> OperatorDecisionAsync(NpgsqlConnection conn, NpgsqlTransaction tx, ConflictType type, RowChange c,
        TargetTable target, SourceTransaction source, CancellationToken ct)
    {
        var (sql, parameters) = ConflictSql.FindDecision(subscription, type, c, target, source.CommitLsn);
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.Parameters.AddRange(parameters);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1)) : (0, null);
    }

    /// <summary>
    /// Records the conflict for the operator outside the apply transaction (which is rolled back) and returns the
    /// error that stops the subscription. The next attempts find the same row until someone decides it.
    /// </summary>
    private async Task<NavetteException> AbortAsync(ConflictType type, RowChange c, KeyState st, RowVersion? local, TargetTable target,
        ConflictPolicy policy, SourceTransaction source, CancellationToken ct)
    {
        long id;
        await using (var conn = new NpgsqlConnection(targetConnectionString))
        {
            await conn.OpenAsync(ct);
            var (findSql, findParams) = ConflictSql.FindDecision(subscription, type, c, target, source.CommitLsn);
            await using var find = new NpgsqlCommand(findSql, conn);
            find.Parameters.AddRange(findParams);
            if (await find.ExecuteScalarAsync(ct) is long known)
            {
                id = known;
            }
            else
            {
                var (sql, parameters) = ConflictSql.Log(subscription, type, c, target, st.Json, local, new RowVersion(source.CommitTime, fromNode), source.CommitLsn, policy, "aborted");
                await using var insert = new NpgsqlCommand(sql + " RETURNING id", conn);
                insert.Parameters.AddRange(parameters);
                id = (long)(await insert.ExecuteScalarAsync(ct))!;
            }
        }
        return new NavetteException(
            $"subscription {subscription}: {type.Name()} conflict on {c.Relation} {ApplyWriter.KeyText(c)} (source transaction {source.Xid} committed at {source.CommitLsn}); " +
            $"the policy is abort, so nothing from this transaction on is applied. Decide it with: navette conflicts resolve --node {origins.LocalNode} --id {id} --keep incoming|local " +
            "(navette conflicts shows both rows); the subscription then resumes.");
    }

    /// <summary>conflicts: custom — the user's function gets the conflict type and both rows and returns the row to keep, or NULL.</summary>
    private async Task MergeAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Plan plan, ConflictType type, RowChange c, RowImage? remote, KeyState st,
        TargetTable target, ConflictPolicy policy, SourceTransaction source, RowVersion incoming, CancellationToken ct)
    {
        var (sql, parameters) = ConflictSql.CallMerge(policy.Function!, type, c, remote, st.Json, target);
        string?[] values;
        bool deleted;
        try
        {
            await using var cmd = new NpgsqlCommand(sql, conn, tx);
            cmd.Parameters.AddRange(parameters);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            deleted = r.GetBoolean(0);
            values = new string?[c.Relation.Columns.Length];
            for (var i = 0; i < values.Length; i++) values[i] = r.IsDBNull(i + 1) ? null : r.GetString(i + 1);
        }
        catch (PostgresException e)
        {
            throw new NavetteException($"subscription {subscription}: conflict function {policy.Function} failed on {type.Name()} for {c.Relation} {ApplyWriter.KeyText(c)}: {e.SqlState} {e.MessageText}; fix the function and the subscription resumes", e);
        }
        var key = KeyOf(c.Relation, c.Old ?? c.New!);
        if (deleted)
        {
            if (st.Live)
                plan.Changes.Add(new RowChange { Kind = ChangeKind.Delete, Relation = c.Relation, Old = KeyImage(c.Relation, key) });
            Deleted(st, incoming);
            return;
        }
        var row = new RowImage(values, null);
        plan.Changes.Add(st.Live
            ? new RowChange { Kind = ChangeKind.Update, Relation = c.Relation, Old = KeyImage(c.Relation, key), New = row }
            : new RowChange { Kind = ChangeKind.Insert, Relation = c.Relation, New = row });
        Written(st, incoming);
    }

    private static void QueueRowResend(Plan plan, SourceRelation rel, TargetTable target, string?[] key, KeyState st)
    {
        if (st.Xmin is null) return;
        plan.Rebroadcasts = true;
        plan.Statements.Add(ConflictSql.QueueRowResend(target, rel, key, st.Xmin));
    }

    private static void QueueDeleteResend(Plan plan, SourceRelation rel, TargetTable target, RowImage row, string?[] key)
    {
        plan.Rebroadcasts = true;
        plan.Statements.Add(ConflictSql.QueueDeleteResend(target, rel, key, row));
    }

    // ------------------------------------------------------------ local state

    /// <summary>Reads rows and tombstones of the keys, locking them. False when some row carries an origin this session does not know yet.</summary>
    private async Task<bool> LookupAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Dictionary<SourceRelation, List<string?[]>> keys,
        Dictionary<SourceRelation, TargetTable> targets, Dictionary<Key, KeyState> states, HashSet<uint> unknown, CancellationToken ct)
    {
        var complete = true;
        await using var batch = new NpgsqlBatch(conn, tx);
        var lockIds = keys.SelectMany(kv => kv.Value.Select(k => ConflictSql.LockId(targets[kv.Key].QualifiedName, k))).Distinct().Order().ToArray();
        var (lockSql, lockParams) = ConflictSql.LockKeys(lockIds);
        var locks = new NpgsqlBatchCommand(lockSql);
        locks.Parameters.AddRange(lockParams);
        batch.BatchCommands.Add(locks);
        var order = new List<(SourceRelation Rel, bool Tombstones)>();
        foreach (var (rel, list) in keys)
        {
            var fromIds = origins.IdsOf(fromNode);
            var (rowsSql, rowsParams) = ConflictSql.LookupRows(targets[rel], rel, list, fromIds);
            var rows = new NpgsqlBatchCommand(rowsSql);
            rows.Parameters.AddRange(rowsParams);
            batch.BatchCommands.Add(rows);
            order.Add((rel, false));
            var (tombSql, tombParams) = ConflictSql.LookupTombstones(targets[rel], rel, list);
            var tombs = new NpgsqlBatchCommand(tombSql);
            tombs.Parameters.AddRange(tombParams);
            batch.BatchCommands.Add(tombs);
            order.Add((rel, true));
        }
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.NextResultAsync(ct); // past the locks
        var command = 0;
        do
        {
            var (rel, tombstones) = order[command++];
            var list = keys[rel];
            while (await r.ReadAsync(ct))
            {
                var st = states[new Key(rel, list[r.GetInt32(0) - 1])];
                if (tombstones)
                {
                    var roident = r.IsDBNull(2) ? 0u : (uint)r.GetInt64(2);
                    if (!origins.Knows(roident)) { complete = false; unknown.Add(roident); }
                    // A tombstone whose writer is unknown is as good as forgotten.
                    if (!r.IsDBNull(1) && origins.NodeOf(roident) is { } deleter)
                        st.Tombstone = new RowVersion(r.GetDateTime(1), deleter);
                    continue;
                }
                var id = r.IsDBNull(3) ? 0u : (uint)r.GetInt64(3);
                if (!origins.Knows(id)) { complete = false; unknown.Add(id); }
                st.Live = true;
                st.Xmin = r.GetString(1);
                var writer = origins.NodeOf(id);
                st.Unknown = r.IsDBNull(2) || writer is null;
                st.Version = st.Unknown ? RowVersion.Unknown(writer ?? "") : new RowVersion(r.GetDateTime(2), writer!);
                st.Json = r.IsDBNull(4) ? null : r.GetString(4);
            }
        } while (await r.NextResultAsync(ct));
        return complete;
    }

    private static IEnumerable<string?[]> KeysOf(RowChange c)
    {
        switch (c.Kind)
        {
            case ChangeKind.Insert:
                yield return KeyOf(c.Relation, c.New!);
                break;
            case ChangeKind.Update:
                yield return KeyOf(c.Relation, c.Old ?? c.New!);
                if (KeyChanged(c)) yield return KeyOf(c.Relation, c.New!);
                break;
            case ChangeKind.Delete:
                yield return KeyOf(c.Relation, c.Old!);
                break;
        }
    }

    private static bool KeyChanged(RowChange c)
    {
        if (c.Old is null || c.New is null) return false;
        foreach (var k in c.Relation.KeyColumns)
            if (!string.Equals(c.Old.Values[k], c.New.Values[k], StringComparison.Ordinal)) return true;
        return false;
    }

    internal static string?[] KeyOf(SourceRelation rel, RowImage image)
    {
        var key = new string?[rel.KeyColumns.Length];
        for (var i = 0; i < key.Length; i++) key[i] = image.Values[rel.KeyColumns[i]];
        return key;
    }

    private static RowImage KeyImage(SourceRelation rel, string?[] key)
    {
        var values = new string?[rel.Columns.Length];
        for (var i = 0; i < key.Length; i++) values[rel.KeyColumns[i]] = key[i];
        return new RowImage(values, null);
    }
}
