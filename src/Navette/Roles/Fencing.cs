using Microsoft.Extensions.Logging;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Roles;

/// <summary>What a failover recorded about the origin it left behind (<c>navette.fenced_node</c> on every survivor).</summary>
internal sealed record FencedNode(string Node, string NewOrigin, string LostSubscription, string[] Sets, NpgsqlLogSequenceNumber DivergenceLsn, DateTime FencedAt);

/// <summary>
/// Fencing against split brain: an origin lost at a failover may come back with clients still pointed at it. Until
/// <c>navette rejoin</c>, navette keeps it read-only whenever it sees it: <c>navette apply</c> and the daemon (every few
/// seconds) make its database read-only for new sessions and end the sessions that were there.
/// </summary>
internal static class Fencing
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan GuardInterval = TimeSpan.FromSeconds(2);

    /// <summary>Makes every fenced node that answers read-only; returns what it changed (nothing when they already are, or are down).</summary>
    public static async Task<List<string>> EnforceAsync(NavetteConfig config, ILogger log, CancellationToken ct)
    {
        var actions = new List<string>();
        foreach (var node in config.Nodes.Values.Where(n => n.Fenced))
        {
            NpgsqlConnection conn;
            try
            {
                conn = await OpenAsync(node, ct);
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException || e is OperationCanceledException && !ct.IsCancellationRequested)
            {
                log.LogDebug("fenced node {Node} does not answer ({Error}); it is kept read-only once it does", node.Name,
                    ConnInfo.ScrubSecrets(Daemon.SubscriptionWorker.Describe(e), node.ConnInfo));
                continue;
            }
            await using (conn)
            {
                if (await WriteGate.IsClosedAsync(conn, ct)) continue;
                var (_, drained) = await WriteGate.CloseAndDrainAsync(conn, TimeSpan.Zero, log, ct);
                var message = $"node {node.Name}: fenced (it left the topology at a failover): made read-only for its clients" +
                              (drained.Idle + drained.Terminated > 0 ? $", {drained.Idle + drained.Terminated} session(s) that could still write terminated" : "") +
                              $"; navette rejoin {node.Name} brings it back as a replica";
                log.LogWarning("{Message}", message);
                actions.Add(message);
            }
        }
        return actions;
    }

    /// <summary>The daemon's loop: enforces the fences until cancelled.</summary>
    public static async Task GuardAsync(NavetteConfig config, ILogger log, CancellationToken ct)
    {
        if (!config.Nodes.Values.Any(n => n.Fenced)) return;
        using var timer = new PeriodicTimer(GuardInterval);
        try
        {
            do
            {
                try
                {
                    await EnforceAsync(config, log, ct);
                }
                catch (Exception e) when (e is NpgsqlException or NavetteException or TimeoutException)
                {
                    log.LogWarning("fencing: {Error}", Daemon.SubscriptionWorker.Describe(e));
                }
            } while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>A connection to a node for a role change, with a short connect timeout and navette's application name.</summary>
    public static async Task<NpgsqlConnection> OpenAsync(NodeConfig node, CancellationToken ct, TimeSpan? timeout = null)
    {
        var csb = new NpgsqlConnectionStringBuilder(node.ToNpgsqlConnectionString())
        {
            ApplicationName = WriteGate.ApplicationName,
            Timeout = (int)Math.Ceiling((timeout ?? ConnectTimeout).TotalSeconds),
        };
        var conn = new NpgsqlConnection(csb.ConnectionString);
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter((timeout ?? ConnectTimeout) + TimeSpan.FromSeconds(1));
            await conn.OpenAsync(limit.Token);
            return conn;
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    public static async Task RecordAsync(NpgsqlConnection conn, FencedNode f, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO navette.fenced_node (node, new_origin, lost_subscription, sets, divergence_lsn)
            VALUES ($1, $2, $3, $4, $5::text::pg_lsn)
            ON CONFLICT (node) DO UPDATE SET new_origin = excluded.new_origin, lost_subscription = excluded.lost_subscription,
                                             sets = excluded.sets, divergence_lsn = excluded.divergence_lsn, fenced_at = now()
            """, conn);
        cmd.Parameters.AddWithValue(f.Node);
        cmd.Parameters.AddWithValue(f.NewOrigin);
        cmd.Parameters.AddWithValue(f.LostSubscription);
        cmd.Parameters.AddWithValue(f.Sets);
        cmd.Parameters.AddWithValue(f.DivergenceLsn.ToString());
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static async Task<FencedNode?> ReadAsync(NpgsqlConnection conn, string node, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT node, new_origin, lost_subscription, sets, divergence_lsn::text, fenced_at FROM navette.fenced_node WHERE node = $1", conn);
        cmd.Parameters.AddWithValue(node);
        try
        {
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return null;
            return new FencedNode(r.GetString(0), r.GetString(1), r.GetString(2), r.GetFieldValue<string[]>(3),
                NpgsqlLogSequenceNumber.Parse(r.GetString(4)), r.GetDateTime(5));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return null;
        }
    }

    public static async Task ForgetAsync(NpgsqlConnection conn, string node, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("DELETE FROM navette.fenced_node WHERE node = $1", conn);
        cmd.Parameters.AddWithValue(node);
        try { await cmd.ExecuteNonQueryAsync(ct); }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable) { }
    }
}
