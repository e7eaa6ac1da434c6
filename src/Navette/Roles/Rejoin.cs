using System.Text;
using Microsoft.Extensions.Logging;
using Navette.Capture;
using Navette.Config;
using Navette.Consistency;
using Navette.Setup;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Roles;

/// <summary>What a rejoin did.</summary>
/// <param name="Transactions">The lost origin's transactions that never reached the others (null: its slot was gone, only rows are reported).</param>
internal sealed record RejoinResult(string Node, string Origin, SubscriptionConfig Subscription, IReadOnlyList<SourceTransaction>? Transactions, string ReportPath,
    ResyncReport Leveled, IReadOnlyList<string> Actions);

/// <summary>
/// <c>navette rejoin NODE</c>: an origin lost at a failover is back. It is closed to its clients' writes, its transactions
/// after the position recorded at the failover are read from its own slot and reported (as SQL in a file, and one
/// <c>navette.conflict_log</c> row per change on the node), then it is made identical to the origin (<see cref="Resync"/>:
/// compare under a new slot's snapshot, only differing rows written) and subscribes to it as a read-only replica.
/// </summary>
internal sealed class Rejoin(NavetteConfig config, ILogger log, Action<string>? progress = null)
{
    public CompareOptions Compare { get; init; } = new();

    /// <summary>Changes logged to conflict_log with the row the node now holds; beyond that, without it.</summary>
    private const int DetailedConflicts = 10_000;

    public async Task<RejoinResult> RunAsync(string node, string? reportPath, CancellationToken ct)
    {
        if (!config.Nodes.TryGetValue(node, out var lost))
            throw new NavetteException($"no node named {node} in {config.SourcePath}; defined: {string.Join(", ", config.Nodes.Keys)}");
        if (!lost.Fenced)
            throw new NavetteException($"node {node} is not fenced in {config.SourcePath}; rejoin brings back an origin lost at a failover (navette failover marks it fenced: true)");
        var origin = TopologyPlanner.OriginOf(config);
        var conns = await RoleConnections.OpenAsync(config, [origin, node], ct);
        try
        {
            var fence = await Fencing.ReadAsync(conns[origin], node, ct);
            var sets = fence?.Sets ?? config.Subscriptions.Values.Where(s => s.From == origin).SelectMany(s => s.Sets).Distinct().ToArray();
            var sub = TopologyPlanner.Rejoining(config, node, origin, sets);
            var path = config.SourcePath;
            string Edit(string text) => ConfigFileEditor.SetSubscription(ConfigFileEditor.SetNode(text, path, node, lost.ConnInfo), path, sub);
            await ConfigFileEditor.CheckAsync(path, Edit, "rejoin refused: the file cannot take the change", ct);
            var next = ConfigLoader.Parse(Edit(await File.ReadAllTextAsync(path, ct)), path);
            reportPath ??= Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $"navette-rejoin-{node}-{DateTime.UtcNow:yyyyMMddTHHmmssZ}.sql");
            var actions = new List<string>();

            var conn = conns[node];
            var (_, drained) = await WriteGate.CloseAndDrainAsync(conn, TimeSpan.Zero, log, ct);
            if (drained.Idle + drained.Terminated > 0)
                actions.Add($"node {node}: read-only, {drained.Idle + drained.Terminated} client session(s) ended");
            List<SourceTransaction>? transactions = null;
            if (fence is null)
                log.LogWarning("{Origin} has no record of how far it had applied {Node} (navette.fenced_node); only the rows found different are reported", origin, node);
            else
                transactions = await Divergence.ReadAsync(lost, conn, fence, log, ct);
            progress?.Invoke(transactions is null ? $"{node}: its transactions cannot be listed; comparing with {origin}"
                : $"{node}: {transactions.Count} transaction(s) ({transactions.Sum(t => t.Changes.Count)} change(s)) never reached {origin}");

            // Its slots were for its old replicas: they would keep its WAL forever.
            foreach (var (slot, active) in await NodeInspector.NavetteSlotsAsync(conn, ct))
            {
                if (active) throw new NavetteException($"slot {slot} on {node} is being read; stop whatever reads it (an old navette run?), then rejoin");
                await RoleConnections.DropSlotIfIdleAsync(conn, slot, ct);
                actions.Add($"node {node}: slot {slot} dropped (from its time as the origin)");
            }

            actions.AddRange(await new Reconciler(next, log, additive: true).RunAsync(ct));
            var leveled = await new Resync(next, Compare, log).RunAsync(sub.Name, progress, ct);
            actions.Add($"node {node}: identical to {origin} ({leveled.Tables.Sum(t => t.Written)} row(s) written, {leveled.Tables.Sum(t => t.Removed)} removed); streams {sub.Name} from {leveled.StartsAt}");

            await File.WriteAllTextAsync(reportPath, Report(node, origin, fence, transactions, leveled), ct);
            actions.Add($"{reportPath}: {(transactions is null ? "rows" : $"{transactions.Count} transaction(s)")} of {node} that never reached {origin}");
            if (transactions is not null)
            {
                var logged = await LogConflictsAsync(conn, sub.Name, node, origin, transactions, leveled.StartsAt, ct);
                actions.Add($"node {node}: {logged} discarded change(s) logged in navette.conflict_log (navette conflicts --node {node})");
            }

            await ConfigFileEditor.UpdateAsync(path, Edit, ct);
            actions.Add($"{path}: node {node} no longer fenced; subscription {sub.Name} ({origin} -> {node}) added");
            foreach (var c in conns.Values) await Fencing.ForgetAsync(c, node, ct);
            foreach (var other in next.Subscriptions.Values.SelectMany(s => new[] { s.From, s.To }).Distinct().Where(n => !conns.ContainsKey(n)))
            {
                try
                {
                    await using var c = await Fencing.OpenAsync(next.Nodes[other], ct);
                    await Fencing.ForgetAsync(c, node, ct);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    log.LogWarning("node {Other}: could not forget the fence of {Node} ({Error})", other, node, Daemon.SubscriptionWorker.Describe(e));
                }
            }
            actions.AddRange(await new Reconciler(next, log).RunAsync(ct));
            return new RejoinResult(node, origin, sub, transactions, reportPath, leveled, actions);
        }
        finally
        {
            foreach (var c in conns.Values) await c.DisposeAsync();
        }
    }

    private static string Report(string node, string origin, FencedNode? fence, List<SourceTransaction>? transactions, ResyncReport leveled)
    {
        var sb = new StringBuilder();
        if (fence is not null && transactions is not null)
            sb.Append(Divergence.Render(node, fence, transactions));
        else
            sb.Append($"-- navette rejoin {node}: its transactions since the failover could not be read (no record or no slot); the rows below differed from {origin}.\n");
        sb.Append($"\n-- rows navette changed on {node} to make it identical to {origin} (as of {leveled.StartsAt} on {origin}):\n");
        foreach (var (compared, written, removed) in leveled.Tables.Where(t => t.Compared.Differences.Count > 0))
        {
            sb.Append($"--   {compared.Subject.Name}: {written} written, {removed} removed\n");
            foreach (var d in compared.Differences)
            {
                var what = d.Kind switch { DifferenceKind.Missing => "missing on " + node, DifferenceKind.Extra => "only on " + node, _ => "different" };
                sb.Append($"--     {d.KeyText(compared.Subject.KeyColumns)}: {what}\n");
            }
        }
        return sb.ToString();
    }

    private static async Task<int> LogConflictsAsync(NpgsqlConnection conn, string subscription, string node, string origin, List<SourceTransaction> transactions,
        NpgsqlLogSequenceNumber at, CancellationToken ct)
    {
        var n = 0;
        foreach (var tx in transactions)
        foreach (var c in tx.Changes)
        {
            var key = c.Kind == ChangeKind.Truncate ? "{}" : Divergence.Json(c.Relation, c.Old ?? c.New, keyOnly: true);
            var mine = c.Kind == ChangeKind.Delete ? c.Old : c.New;
            string? now = null;
            if (n < DetailedConflicts && c.Kind != ChangeKind.Truncate)
            {
                var image = c.Old ?? c.New!;
                var where = string.Join(" AND ", Divergence.KeyIndexes(c.Relation).Where(i => !image.IsUnchanged(i)).Select(i =>
                    image.Values[i] is { } v ? $"t.{Sql.Ident(c.Relation.Columns[i])} = {Sql.Literal(v)}" : $"t.{Sql.Ident(c.Relation.Columns[i])} IS NULL"));
                await using var read = new NpgsqlCommand($"SELECT to_jsonb(t)::text FROM {c.Relation.QualifiedName} AS t WHERE {where} LIMIT 1", conn);
                now = await read.ExecuteScalarAsync(ct) as string;
            }
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO navette.conflict_log (subscription, conflict_type, table_name, key, local_tuple, remote_tuple, local_origin, local_commit_time,
                                                  remote_origin, remote_commit_time, remote_commit_lsn, policy, outcome)
                VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9, now(), $10::text::pg_lsn, 'rejoin', 'discarded')
                """, conn);
            cmd.Parameters.AddWithValue(subscription);
            cmd.Parameters.AddWithValue("divergent_" + c.Kind.ToString().ToLowerInvariant());
            cmd.Parameters.AddWithValue(c.Relation.QualifiedName);
            cmd.Parameters.AddWithValue(key);
            cmd.Parameters.Add(new NpgsqlParameter { Value = mine is null ? DBNull.Value : Divergence.Json(c.Relation, mine, keyOnly: false), NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)now ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.AddWithValue(node);
            cmd.Parameters.AddWithValue(tx.CommitTime);
            cmd.Parameters.AddWithValue(origin);
            cmd.Parameters.AddWithValue(at.ToString());
            await cmd.ExecuteNonQueryAsync(ct);
            n++;
        }
        return n;
    }
}
