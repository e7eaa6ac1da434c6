using System.Diagnostics;
using Navette.Config;
using Npgsql;

namespace Navette.Markers;

/// <summary>
/// <c>navette wait</c>: writes a fence row on every origin; a subscription has applied everything its origin
/// had committed once the fence is on its target. With <c>forward</c>, fences of the origin's own origins
/// travel through too, so a cascade is waited for end to end.
/// </summary>
internal sealed class FenceWaiter(NavetteConfig config)
{
    /// <param name="LastError">Why the target could not be read at the last try, when it could not.</param>
    public sealed record Pending(string Subscription, string Node, IReadOnlyList<string> WaitingForFencesFrom, string? LastError = null);

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Where conflicts are resolved, a node that kept its own row sends it again after applying the change that lost;
    /// such a re-send can start after this wait's fence was written. So the wait repeats until a whole round saw no
    /// re-send queued or sent on any node.
    /// </summary>
    public async Task<IReadOnlyList<Pending>> WaitAsync(TimeSpan timeout, Action<string>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var resolving = config.Subscriptions.Values.Where(config.ResolvesConflicts).Select(s => s.To).Distinct().ToList();
        while (true)
        {
            var before = resolving.Count > 0 ? await ResendStateAsync(resolving, ct) : null;
            var pending = await RoundAsync(clock, timeout, progress, ct);
            if (pending.Count > 0 || before is null) return pending;
            var after = await ResendStateAsync(resolving, ct);
            if (after.All(a => a.Value.Queued == 0 && before.TryGetValue(a.Key, out var b) && b.Queued == 0 && b.LastId == a.Value.LastId))
                return [];
            if (clock.Elapsed >= timeout)
                return resolving.Select(n => new Pending("(re-sends of rows kept in conflicts)", n, [n])).ToList();
            progress?.Invoke("rows kept in conflicts are being sent again; waiting one more round");
        }
    }

    /// <summary>Per node: the last re-send ever queued and how many are still queued.</summary>
    private async Task<Dictionary<string, (long LastId, long Queued)>> ResendStateAsync(List<string> nodes, CancellationToken ct)
    {
        var result = new Dictionary<string, (long, long)>();
        foreach (var node in nodes)
        {
            var cs = config.Nodes[node].ToNpgsqlConnectionString();
            try
            {
                await using var conn = new NpgsqlConnection(cs);
                await conn.OpenAsync(ct);
                await using var cmd = new NpgsqlCommand(
                    "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM navette.rebroadcast_id_seq), (SELECT count(*) FROM navette.rebroadcast)", conn);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                await r.ReadAsync(ct);
                result[node] = (r.GetInt64(0), r.GetInt64(1));
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                result[node] = (0, 0); // catalog older than conflict handling: nothing is ever re-sent there
            }
            catch (Exception e) when (Transient(e, ct))
            {
                ClearPool(cs);
                result[node] = (-1, 1); // unknown: counts as busy, so one more round runs
            }
        }
        return result;
    }

    private async Task<IReadOnlyList<Pending>> RoundAsync(Stopwatch clock, TimeSpan timeout, Action<string>? progress, CancellationToken ct)
    {
        var origins = config.Subscriptions.Values.Select(s => s.From).Distinct().ToList();
        var fences = new Dictionary<string, Guid>();
        foreach (var node in origins)
            fences[node] = await WriteFenceAsync(node, clock, timeout, ct);

        var required = config.Subscriptions.Values.ToDictionary(s => s.Name, s => RequiredFences(s, new HashSet<string>()));
        var pending = required.ToDictionary(kv => kv.Key, kv => kv.Value.ToHashSet());
        var errors = new Dictionary<string, string>();
        while (true)
        {
            foreach (var sub in config.Subscriptions.Values)
            {
                var left = pending[sub.Name];
                if (left.Count == 0) continue;
                var cs = config.Nodes[sub.To].ToNpgsqlConnectionString();
                try
                {
                    await using var conn = new NpgsqlConnection(cs);
                    await conn.OpenAsync(ct);
                    // A fence written before the copy's snapshot arrives with the copy, before the copy is over: it
                    // counts only once the subscription streams.
                    await using var cmd = new NpgsqlCommand("""
                        SELECT node FROM navette.fence
                         WHERE id = ANY($1)
                           AND NOT EXISTS (SELECT 1 FROM navette.subscription WHERE name = $2 AND state IN ('initializing', 'copying'))
                        """, conn);
                    cmd.Parameters.AddWithValue(left.Select(n => fences[n]).ToArray());
                    cmd.Parameters.AddWithValue(sub.Name);
                    await using var r = await cmd.ExecuteReaderAsync(ct);
                    while (await r.ReadAsync(ct)) left.Remove(r.GetString(0));
                    errors.Remove(sub.Name);
                }
                catch (Exception e) when (Transient(e, ct))
                {
                    // A target restarting while we wait is not a reason to give up before the timeout.
                    errors[sub.Name] = $"node {sub.To}: {Daemon.SubscriptionWorker.Describe(e)}";
                    ClearPool(cs);
                    continue;
                }
                if (left.Count == 0) progress?.Invoke($"{sub.Name}: caught up ({clock.Elapsed.TotalSeconds:F1} s)");
            }
            var stillPending = pending.Where(p => p.Value.Count > 0).ToList();
            if (stillPending.Count == 0) return [];
            if (clock.Elapsed >= timeout)
                return stillPending.Select(p => new Pending(p.Key, config.Subscriptions[p.Key].To, p.Value.ToList(), errors.GetValueOrDefault(p.Key))).ToList();
            await Task.Delay(PollInterval, ct);
        }
    }

    /// <summary>Writes this wait's fence on an origin, retrying a node that is unreachable until the timeout.</summary>
    private async Task<Guid> WriteFenceAsync(string node, Stopwatch clock, TimeSpan timeout, CancellationToken ct)
    {
        var cs = config.Nodes[node].ToNpgsqlConnectionString();
        var id = Guid.NewGuid();
        while (true)
        {
            try
            {
                await using var conn = new NpgsqlConnection(cs);
                await conn.OpenAsync(ct);
                // The sequences first, in a transaction of their own: at the fence, the replicas' sequences are level too.
                await Sequences.SequenceMarker.WriteAsync(conn, ct);
                // ON CONFLICT: a retry after a commit whose acknowledgement was lost.
                await using var cmd = new NpgsqlCommand("INSERT INTO navette.fence (id, node) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", conn);
                cmd.Parameters.AddWithValue(id);
                cmd.Parameters.AddWithValue(node);
                await cmd.ExecuteNonQueryAsync(ct);
                return id;
            }
            catch (Exception e) when (Transient(e, ct))
            {
                ClearPool(cs);
                if (clock.Elapsed >= timeout)
                    throw new NavetteException($"cannot write a fence on node {node} ({config.Nodes[node].RedactedConnInfo}): {Daemon.SubscriptionWorker.Describe(e)}");
                await Task.Delay(PollInterval * 5, ct);
            }
        }
    }

    private static bool Transient(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is NpgsqlException { IsTransient: true } or NpgsqlException { InnerException: IOException or System.Net.Sockets.SocketException or TimeoutException } or TimeoutException
            or PostgresException { SqlState: PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.CrashShutdown };

    private static void ClearPool(string connectionString)
    {
        using var conn = new NpgsqlConnection(connectionString);
        NpgsqlConnection.ClearPool(conn);
    }

    private IEnumerable<string> RequiredFences(SubscriptionConfig sub, HashSet<string> visited)
    {
        if (!visited.Add(sub.Name)) return [];
        var result = new HashSet<string> { sub.From };
        if (sub.Forward)
            foreach (var upstream in config.Subscriptions.Values.Where(u => u.To == sub.From))
                result.UnionWith(RequiredFences(upstream, visited));
        return result;
    }
}
