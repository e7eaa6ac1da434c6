using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Navette.Catalog;
using Navette.Config;
using Navette.Consistency;
using Navette.Setup;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Roles;

/// <summary>How far a direct replica of the lost origin had applied it (the end LSN of its last applied transaction).</summary>
internal sealed record ReplicaPosition(string Node, string Subscription, NpgsqlLogSequenceNumber Applied);

/// <summary>What a failover did.</summary>
/// <param name="Promoted">From the start of the command until the new origin took writes.</param>
internal sealed record FailoverResult(RoleChange Change, IReadOnlyList<ReplicaPosition> Positions, TimeSpan Promoted, IReadOnlyList<ResyncReport> Leveled, IReadOnlyList<string> Actions);

/// <summary>
/// <c>navette failover --to NODE</c>: the origin is gone. NODE must be its most advanced direct replica (the applied
/// position of each replica is its replication origin's progress, a position in the lost origin's WAL, so they compare);
/// it becomes the origin (sequences raised past its data, read-only lifted), the other replicas are re-pointed to it and
/// brought level with <see cref="Resync"/> (a compare under the new slot's snapshot, only differing rows written), and
/// the lost origin is fenced: recorded in the file (<c>fenced: true</c>) and in <c>navette.fenced_node</c> on every
/// survivor with the position the new origin had reached, from which <c>navette rejoin</c> reads what never arrived.
/// </summary>
internal sealed class Failover(NavetteConfig config, ILogger log, Action<string>? progress = null)
{
    public CompareOptions Compare { get; init; } = new();

    public async Task<FailoverResult> RunAsync(string to, bool force, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var change = TopologyPlanner.Plan(config, to, keepOldOrigin: false);
        var lost = change.OldOrigin;
        var path = config.SourcePath;
        string Edit(string text) => change.Edit(text, path, config, fenceOldOrigin: true);
        await ConfigFileEditor.CheckAsync(path, Edit, "failover refused: the file cannot take the change", ct);
        var next = ConfigLoader.Parse(Edit(await File.ReadAllTextAsync(path, ct)), path);

        await EnsureLostAsync(lost, to, ct);
        var survivors = config.Subscriptions.Values.SelectMany(s => new[] { s.From, s.To }).Where(n => n != lost).Distinct().ToList();
        var conns = await RoleConnections.OpenAsync(config, survivors, ct);
        try
        {
            var positions = new List<ReplicaPosition>();
            foreach (var sub in config.Subscriptions.Values.Where(s => s.From == lost))
                positions.Add(new ReplicaPosition(sub.To, sub.Name, await ProgressAsync(conns[sub.To], sub.Name, ct)));
            var mine = positions.Single(p => p.Node == to);
            progress?.Invoke($"applied positions of {lost}'s replicas: " + string.Join(", ", positions.Select(p => $"{p.Node} {p.Applied}")));
            var ahead = positions.Where(p => p.Applied > mine.Applied).ToList();
            if (ahead.Count > 0 && !force)
                throw new NavetteException($"failover to {to} refused; nothing was changed: {string.Join(", ", ahead.Select(p => $"{p.Node} applied {lost} up to {p.Applied}"))}, " +
                                           $"further than {to} ({mine.Applied}). Fail over to {ahead.MaxBy(p => p.Applied)!.Node}, or pass --force to make {to} the origin " +
                                           $"and lose what only the others had (they are made identical to {to})");
            var actions = new List<string>();

            // Fence first: the lost origin's subscriptions can no longer resume on the survivors, whatever comes back.
            var record = new FencedNode(lost, to, change.IntoNewOrigin.Name, change.IntoNewOrigin.Sets.ToArray(), mine.Applied, DateTime.UtcNow);
            foreach (var (node, conn) in conns)
            {
                await CatalogInstaller.EnsureAsync(conn, ct);
                await Fencing.RecordAsync(conn, record, ct);
            }
            foreach (var sub in change.Removed)
            {
                await using var cmd = new NpgsqlCommand("DELETE FROM navette.subscription WHERE name = $1", conns[sub.To]);
                cmd.Parameters.AddWithValue(sub.Name);
                await cmd.ExecuteNonQueryAsync(ct);
            }
            actions.Add($"node {lost}: fenced; every survivor records that {to} had applied it up to {mine.Applied} (navette rejoin {lost} reads what came after from slot {Sql.SlotName(record.LostSubscription)} there)");

            // Promote.
            var origin = conns[to];
            var tables = await SequenceCarrier.TablesAsync(config, origin, change.IntoNewOrigin.Sets, ct);
            actions.AddRange(await SequenceCarrier.RaiseToDataAsync(to, origin, tables, ct));
            if (await WriteGate.IsClosedAsync(origin, ct))
                actions.Add($"node {to}: read-only setting lifted");
            await WriteGate.OpenAsync(origin, ct);
            var promoted = clock.Elapsed;
            progress?.Invoke($"{to} is the origin and takes writes ({promoted.TotalSeconds:F1} s after the failover started)");

            // Re-point and level the others: each resync compares under its new slot's snapshot and writes only what differs.
            actions.AddRange(await new Reconciler(next, log, additive: true).RunAsync(ct));
            var leveled = new List<ResyncReport>();
            foreach (var sub in change.Added)
            {
                var report = await new Resync(next, Compare, log).RunAsync(sub.Name, progress, ct);
                leveled.Add(report);
                var written = report.Tables.Sum(t => t.Written);
                var removed = report.Tables.Sum(t => t.Removed);
                actions.Add($"node {sub.To}: level with {to} ({written} row(s) written, {removed} removed); streams {sub.Name} from {report.StartsAt}");
            }
            await ConfigFileEditor.UpdateAsync(path, Edit, ct);
            actions.Add($"{path}: {change.Describe()}; node {lost} fenced");
            actions.AddRange(await new Reconciler(next, log).RunAsync(ct));
            return new FailoverResult(change, positions, promoted, leveled, actions);
        }
        finally
        {
            foreach (var c in conns.Values) await c.DisposeAsync();
        }
    }

    /// <summary>Refuses when the origin still answers: a failover would then split the topology in two writable halves.</summary>
    private async Task EnsureLostAsync(string lost, string to, CancellationToken ct)
    {
        try
        {
            await using var conn = await Fencing.OpenAsync(config.Nodes[lost], ct);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            log.LogInformation("origin {Node} does not answer ({Error}): failing over", lost, ConnInfo.ScrubSecrets(Daemon.SubscriptionWorker.Describe(e), config.Nodes[lost].ConnInfo));
            return;
        }
        throw new NavetteException($"failover refused: the origin {lost} answers. For a planned change use navette switchover --to {to}; if {lost} must go, stop it first (pg_ctl stop), then fail over");
    }

    private static async Task<NpgsqlLogSequenceNumber> ProgressAsync(NpgsqlConnection target, string subscription, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT coalesce(pg_replication_origin_progress($1, true), '0/0')::text", target);
        cmd.Parameters.AddWithValue(Sql.OriginName(subscription));
        try
        {
            return NpgsqlLogSequenceNumber.Parse((string)(await cmd.ExecuteScalarAsync(ct))!);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedObject)
        {
            return NpgsqlLogSequenceNumber.Invalid;
        }
    }
}
