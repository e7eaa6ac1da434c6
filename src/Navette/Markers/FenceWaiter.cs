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
    public sealed record Pending(string Subscription, string Node, IReadOnlyList<string> WaitingForFencesFrom);

    public async Task<IReadOnlyList<Pending>> WaitAsync(TimeSpan timeout, Action<string>? progress, CancellationToken ct)
    {
        var origins = config.Subscriptions.Values.Select(s => s.From).Distinct().ToList();
        var fences = new Dictionary<string, Guid>();
        foreach (var node in origins)
        {
            var id = Guid.NewGuid();
            await using var conn = new NpgsqlConnection(config.Nodes[node].ToNpgsqlConnectionString());
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("INSERT INTO navette.fence (id, node) VALUES ($1, $2)", conn);
            cmd.Parameters.AddWithValue(id);
            cmd.Parameters.AddWithValue(node);
            await cmd.ExecuteNonQueryAsync(ct);
            fences[node] = id;
        }

        var required = config.Subscriptions.Values.ToDictionary(s => s.Name, s => RequiredFences(s, new HashSet<string>()));
        var clock = Stopwatch.StartNew();
        var pending = required.ToDictionary(kv => kv.Key, kv => kv.Value.ToHashSet());
        while (true)
        {
            foreach (var sub in config.Subscriptions.Values)
            {
                var left = pending[sub.Name];
                if (left.Count == 0) continue;
                await using var conn = new NpgsqlConnection(config.Nodes[sub.To].ToNpgsqlConnectionString());
                await conn.OpenAsync(ct);
                await using var cmd = new NpgsqlCommand("SELECT node FROM navette.fence WHERE id = ANY($1)", conn);
                cmd.Parameters.AddWithValue(left.Select(n => fences[n]).ToArray());
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct)) left.Remove(r.GetString(0));
                if (left.Count == 0) progress?.Invoke($"{sub.Name}: caught up ({clock.Elapsed.TotalSeconds:F1} s)");
            }
            var stillPending = pending.Where(p => p.Value.Count > 0).ToList();
            if (stillPending.Count == 0) return [];
            if (clock.Elapsed >= timeout)
                return stillPending.Select(p => new Pending(p.Key, config.Subscriptions[p.Key].To, p.Value.ToList())).ToList();
            await Task.Delay(100, ct);
        }
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
