using Navette.Config;
using Npgsql;

namespace Navette.Monitoring;

/// <summary>
/// Feeds <see cref="ConflictCounters"/> from <c>navette.conflict_log</c> on each subscription's target, where conflict
/// handling writes every conflict in the transaction that resolves it: the totals once at start (no event for old
/// conflicts), then only the rows added since, each one also an event for the dashboard.
/// </summary>
internal sealed class ConflictLogPoller(NavetteConfig config, IReadOnlyDictionary<string, SubscriptionMetrics> metrics)
{
    private const int MaxRowsPerPoll = 500;

    private readonly Dictionary<string, long> _lastId = new(StringComparer.Ordinal);

    public async Task PollAsync(CancellationToken ct)
    {
        foreach (var (name, m) in metrics)
        {
            try
            {
                await PollOneAsync(config.Subscriptions[name], m, ct);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // The target is unreachable: status says so; the conflicts are counted once it is back.
            }
        }
    }

    private async Task PollOneAsync(SubscriptionConfig sub, SubscriptionMetrics m, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(config.Nodes[sub.To].ToNpgsqlConnectionString());
        await conn.OpenAsync(ct);
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('navette.conflict_log') IS NOT NULL", conn))
            if (await exists.ExecuteScalarAsync(ct) is not true) return;

        if (!_lastId.TryGetValue(sub.Name, out var last))
        {
            await using var totals = new NpgsqlCommand(
                "SELECT conflict_type, count(*), max(id) FROM navette.conflict_log WHERE subscription = $1 GROUP BY conflict_type", conn);
            totals.Parameters.AddWithValue(sub.Name);
            await using var r = await totals.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                m.Conflicts.Add(r.GetString(0), r.GetInt64(1));
                last = Math.Max(last, r.GetInt64(2));
            }
            _lastId[sub.Name] = last;
            return;
        }

        await using var added = new NpgsqlCommand($"""
            SELECT id, conflict_type, table_name, key::text, policy, outcome FROM navette.conflict_log
             WHERE subscription = $1 AND id > $2 ORDER BY id LIMIT {MaxRowsPerPoll}
            """, conn);
        added.Parameters.AddWithValue(sub.Name);
        added.Parameters.AddWithValue(last);
        await using (var r = await added.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                last = r.GetInt64(0);
                m.Conflicts.Record(r.GetString(1), $"{r.GetString(2)} key {r.GetString(3)}: {r.GetString(5)} ({r.GetString(4)})");
            }
        }
        _lastId[sub.Name] = last;
    }
}
