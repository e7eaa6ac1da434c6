using Navette.Config;
using Npgsql;

namespace Navette.Roles;

/// <summary>Connections and small catalog operations shared by the role changes.</summary>
internal static class RoleConnections
{
    /// <summary>One connection per node; a node that does not answer is an error naming it (nothing was changed yet).</summary>
    public static async Task<Dictionary<string, NpgsqlConnection>> OpenAsync(NavetteConfig config, IEnumerable<string> nodes, CancellationToken ct)
    {
        var result = new Dictionary<string, NpgsqlConnection>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var name in nodes.Distinct())
        {
            var node = config.Nodes[name];
            try
            {
                result[name] = await Fencing.OpenAsync(node, ct, TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException || e is OperationCanceledException && !ct.IsCancellationRequested)
            {
                problems.Add($"node {name} ({node.RedactedConnInfo}): cannot connect: {ConnInfo.ScrubSecrets(Daemon.SubscriptionWorker.Describe(e), node.ConnInfo)}");
            }
        }
        if (problems.Count == 0) return result;
        foreach (var c in result.Values) await c.DisposeAsync();
        throw new NavetteException("nothing was changed:\n  - " + string.Join("\n  - ", problems));
    }

    /// <summary>Whether the slot is being read; null when it does not exist.</summary>
    public static async Task<bool?> SlotActiveAsync(NpgsqlConnection conn, string slot, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", conn);
        cmd.Parameters.AddWithValue(slot);
        return await cmd.ExecuteScalarAsync(ct) as bool?;
    }

    /// <summary>The subscription's slot on its origin, starting at the origin's current position.</summary>
    public static async Task CreateSlotAsync(NpgsqlConnection origin, SubscriptionConfig sub, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", origin);
        cmd.Parameters.AddWithValue(Sql.SlotName(sub.Name));
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static async Task DropSlotIfIdleAsync(NpgsqlConnection conn, string slot, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", conn);
        cmd.Parameters.AddWithValue(slot);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
