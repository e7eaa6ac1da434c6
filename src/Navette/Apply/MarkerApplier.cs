using System.Text;
using Microsoft.Extensions.Logging;
using Navette.Capture;
using Navette.Markers;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Apply;

/// <summary>
/// Acts on compare and repair requests where they arrive in the stream, inside the apply transaction, after everything
/// before them was applied: the target is then in the state the origin's side of the request describes, except for the
/// transactions that committed between the origin's snapshot and the request's commit. Those reached the target first;
/// <see cref="RecentTransactions"/> says which keys they touched, and the result counts them as unsettled (the
/// requester asks again for those) rather than reporting a difference that is not one. Compare summaries run on
/// <see cref="CompareSessions"/> under a snapshot taken where the request arrived, so the stream does not wait for them.
/// </summary>
internal sealed class MarkerApplier(string subscription, RecentTransactions recent, CompareSessions compareSessions, Ddl.DdlReplayer? ddl,
    Sequences.SequenceFollower? sequences, ILogger log)
    : IAsyncDisposable
{
    private sealed record Request(Dictionary<string, string?> Values)
    {
        public string? this[string column] => Values.GetValueOrDefault(column);
    }

    public async Task<MarkerOutcome> HandleAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RowChange change, CancellationToken ct)
    {
        if (change.Kind != ChangeKind.Insert) return MarkerOutcome.Continue; // the requester deleting old requests
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 0; i < change.Relation.Columns.Length; i++) values[change.Relation.Columns[i]] = change.New!.Values[i];
        if (change.Relation.Name == MarkerTables.Ddl)
            return ddl is null ? MarkerOutcome.Continue : await ddl.ReplayAsync(conn, tx, values, ct);
        if (change.Relation.Name == MarkerTables.SequenceValues)
        {
            if (sequences is not null) await sequences.ApplyAsync(conn, tx, values, ct);
            return MarkerOutcome.Continue;
        }
        var request = new Request(values);
        if (request["subscription"] != subscription) return MarkerOutcome.Continue; // for another subscription from the same origin
        var target = await TargetTable.LoadAsync(conn, tx, request["schema_name"]!, request["table_name"]!, ct);
        switch (change.Relation.Name)
        {
            case MarkerTables.CompareRequest:
                await CompareAsync(conn, tx, request, target, ct);
                break;
            case MarkerTables.RepairRequest:
                await RepairAsync(conn, tx, request, target, ct);
                break;
        }
        return MarkerOutcome.Continue;
    }

    private async Task CompareAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Request r, TargetTable? target, CancellationToken ct)
    {
        var arrays = await ParseArraysAsync(conn, tx, ct, r["key_columns"], r["columns"], r["lower_bound"], r["upper_bound"], r["snap_xip"], r["bucket_bounds"], r["wanted_buckets"]);
        var keyColumns = arrays[0]!.Select(k => k!).ToArray();
        var columns = arrays[1]!.Select(c => c!).ToArray();
        var textColumns = await ParseBoolsAsync(conn, tx, r["text_columns"]!, ct);
        var flat = arrays[5] ?? [];
        var inner = Enumerable.Range(0, flat.Length / Math.Max(1, keyColumns.Length)).Select(i => flat.Skip(i * keyColumns.Length).Take(keyColumns.Length).ToArray()).ToList();
        var detail = r["detail"] == "t";
        var wanted = arrays[6]?.Select(b => int.Parse(b!, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var p = new Consistency.SqlParameters();
        var head = "INSERT INTO navette.compare_result (run, chunk, subscription, row_count, buckets, bucket_rows, bucket_hashes, bucket_hashes2, keys, hashes, unsettled) " +
                   $"SELECT {p.Text(r["run"])}::uuid, {p.Text(r["chunk"])}::int4, {p.Text(subscription)}";
        if (target is null || keyColumns.Any(k => !target.Columns.ContainsKey(k)) || columns.Any(c => !target.Columns.ContainsKey(c)))
        {
            // The table (or a column) is missing here: every row of the range is missing.
            await ExecuteAsync(conn, tx, head + (detail ? ", 0, NULL, NULL, NULL, NULL, '{}'::text[], '{}'::int8[], 0" : ", 0, '{}', '{}', '{}', '{}', NULL, NULL, 0"), p.List, ct);
            await ExecuteAsync(conn, tx, ResultSignal.NotifySql, [], ct);
            return;
        }
        var unsettled = Unsettled(r, arrays[2], arrays[3], arrays[4]!, keyColumns, target, p);
        var sql = detail
            ? head + $", s.n, NULL, NULL, NULL, NULL, s.ks, s.hs, {unsettled} FROM ({Consistency.ChunkSql.Detail(target, keyColumns, columns, textColumns, arrays[2], arrays[3], inner, wanted, p)}) AS s"
            : head + $", (SELECT coalesce(sum(x), 0) FROM unnest(s.bn) AS x), s.bs, s.bn, s.b1, NULL, NULL, NULL, {unsettled} " +
              $"FROM ({Consistency.ChunkSql.Buckets(target, keyColumns, columns, textColumns, arrays[2], arrays[3], inner, p)}) AS s";
        await compareSessions.StartAsync(sql, p.List, $"compare of {target.QualifiedName} (request {r["chunk"]} of run {r["run"]})", ct);
    }

    public ValueTask DisposeAsync() => compareSessions.DisposeAsync();

    /// <summary>
    /// An expression counting the keys of the range that transactions unseen by the origin's snapshot changed: 0 when
    /// there are none, -1 when it cannot be told (a truncate, or the stream restarted since).
    /// </summary>
    private string Unsettled(Request r, string?[]? lower, string?[]? upper, string?[] xip, string[] keyColumns, TargetTable target, Consistency.SqlParameters p)
    {
        var snapshot = new Snapshot(Snapshot.Xid32(ulong.Parse(r["snap_xmin"]!)), Snapshot.Xid32(ulong.Parse(r["snap_xmax"]!)),
            xip.Select(x => Snapshot.Xid32(ulong.Parse(x!))).ToHashSet());
        if (!recent.Covers(NpgsqlLogSequenceNumber.Parse(r["snap_lsn"]!))) return "-1";
        var unseen = recent.KeysUnseenBy(snapshot, r["schema_name"]!, r["table_name"]!);
        if (unseen.Count == 0) return "0";
        if (unseen.Any(k => k is null)) return "-1";
        var arrays = string.Join(", ", keyColumns.Select((_, i) => p.TextArray(unseen.Select(k => k![i]))));
        var casts = keyColumns.Select((k, i) => $"u.k{i}::{target.Columns[k].CastType}").ToList();
        return $"(SELECT count(*) FROM unnest({arrays}) AS u({string.Join(", ", keyColumns.Select((_, i) => "k" + i))})" +
               Consistency.ChunkSql.RangeWhere(target, keyColumns, lower, upper, casts, p) + ")";
    }

    private async Task RepairAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Request r, TargetTable? target, CancellationToken ct)
    {
        var arrays = await ParseArraysAsync(conn, tx, ct, r["key_columns"], r["columns"], r["keys"], r["row_values"], r["snap_xip"]);
        var present = await ParseBoolsAsync(conn, tx, r["present"]!, ct);
        var keyColumns = arrays[0]!;
        var columns = arrays[1]!;
        var keys = arrays[2]!;
        var values = arrays[3]!;
        if (target is null)
            throw new NavetteException($"subscription {subscription}: repair of {r["schema_name"]}.{r["table_name"]}, which does not exist on the target; create it and the subscription resumes");
        var snapshot = new Snapshot(Snapshot.Xid32(ulong.Parse(r["snap_xmin"]!)), Snapshot.Xid32(ulong.Parse(r["snap_xmax"]!)),
            arrays[4]!.Select(x => Snapshot.Xid32(ulong.Parse(x!))).ToHashSet());
        var covered = recent.Covers(NpgsqlLogSequenceNumber.Parse(r["snap_lsn"]!));
        var unseen = covered ? recent.KeysUnseenBy(snapshot, r["schema_name"]!, r["table_name"]!) : [];
        var changed = new HashSet<string>(unseen.Where(k => k is not null).Select(k => string.Join("\u001f", k!)));
        var wholeTable = !covered || unseen.Any(k => k is null);

        var k = keyColumns.Length;
        var n = present.Length;
        var deleteKeys = new List<string?[]>();
        var deletePresent = new List<bool>();
        var insertRows = new List<string?[]>();
        var skipped = new List<string>();
        for (var row = 0; row < n; row++)
        {
            var key = keys.Skip(row * k).Take(k).ToArray();
            if (wholeTable || changed.Contains(string.Join("\u001f", key)))
            {
                // Changed on the origin after the repair read it, and already applied here: the repair's copy is older.
                skipped.Add("(" + string.Join(",", key) + ")");
                continue;
            }
            deleteKeys.Add(key);
            deletePresent.Add(present[row]);
            if (present[row]) insertRows.Add(values.Skip(row * columns.Length).Take(columns.Length).ToArray());
        }

        var removed = await RowSetWriter.DeleteAsync(conn, tx, target, keyColumns, deleteKeys.Where((_, i) => !deletePresent[i]).ToList(), ct);
        await RowSetWriter.DeleteAsync(conn, tx, target, keyColumns, deleteKeys.Where((_, i) => deletePresent[i]).ToList(), ct);
        var written = await RowSetWriter.InsertAsync(conn, tx, target, columns, insertRows, ct);
        await ExecuteAsync(conn, tx,
            "INSERT INTO navette.repair_result (run, batch, subscription, written, deleted, skipped) VALUES ($1::uuid, $2::int4, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [
                new NpgsqlParameter { Value = r["run"]!, NpgsqlDbType = NpgsqlDbType.Text }, new NpgsqlParameter { Value = r["batch"]!, NpgsqlDbType = NpgsqlDbType.Text },
                new NpgsqlParameter { Value = subscription }, new NpgsqlParameter { Value = written }, new NpgsqlParameter { Value = removed },
                new NpgsqlParameter { Value = skipped.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
            ], ct);
        await ExecuteAsync(conn, tx, ResultSignal.NotifySql, [], ct);
        log.LogInformation("subscription {Subscription}: repair of {Table}: {Written} row(s) written, {Deleted} removed, {Skipped} changed meanwhile (left to the stream)",
            subscription, target.QualifiedName, written, removed, skipped.Count);
    }

    /// <summary>The text form of arrays (as pgoutput sends them) parsed by PostgreSQL itself.</summary>
    internal static async Task<string?[]?[]> ParseArraysAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct, params string?[] texts)
    {
        var sql = "SELECT " + string.Join(", ", texts.Select((_, i) => $"${i + 1}::text[]"));
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var t in texts) cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)t ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var result = new string?[]?[texts.Length];
        for (var i = 0; i < texts.Length; i++) result[i] = r.IsDBNull(i) ? null : r.GetFieldValue<string?[]>(i);
        return result;
    }

    private static async Task<bool[]> ParseBoolsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string text, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT $1::text::boolean[]", conn, tx);
        cmd.Parameters.AddWithValue(text);
        return (bool[])(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, List<NpgsqlParameter> parameters, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.Parameters.AddRange(parameters.ToArray());
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
