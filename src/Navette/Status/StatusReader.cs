using Navette.Config;
using Npgsql;

namespace Navette.Status;

/// <summary>Reads every subscription's state from its origin (slot, walsender) and its target (catalog, origin progress).</summary>
internal sealed class StatusReader(NavetteConfig config)
{
    public async Task<IReadOnlyList<SubscriptionStatus>> ReadAsync(CancellationToken ct)
    {
        var tasks = config.Subscriptions.Values.Select(s => ReadOneAsync(s, ct));
        return await Task.WhenAll(tasks);
    }

    private async Task<SubscriptionStatus> ReadOneAsync(SubscriptionConfig sub, CancellationToken ct)
    {
        string state = "unknown";
        string? error = null;
        DateTime? lastCommit = null;
        string? appliedLsn = null;
        long rows = 0, txns = 0;
        double rate = 0;
        long? lagBytes = null, retained = null;
        double? lagSeconds = null;
        bool active = false;
        try
        {
            await using var target = new NpgsqlConnection(config.Nodes[sub.To].ToNpgsqlConnectionString());
            await target.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT state, error, last_commit_time, origin_progress::text, rows_applied, txns_applied, rows_per_second
                  FROM navette.subscription_status WHERE name = $1
                """, target);
            cmd.Parameters.AddWithValue(sub.Name);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct))
                return Empty(sub, "not installed", "run navette apply");
            state = r.GetString(0);
            error = r.IsDBNull(1) ? null : r.GetString(1);
            lastCommit = r.IsDBNull(2) ? null : r.GetDateTime(2);
            appliedLsn = r.IsDBNull(3) ? null : r.GetString(3);
            rows = r.GetInt64(4);
            txns = r.GetInt64(5);
            rate = r.GetDouble(6);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return Empty(sub, "unreachable", $"target {sub.To}: {Daemon.SubscriptionWorker.Describe(e)}");
        }

        try
        {
            await using var origin = new NpgsqlConnection(config.Nodes[sub.From].ToNpgsqlConnectionString());
            await origin.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT s.active,
                       (pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint,
                       (pg_current_wal_lsn() - s.restart_lsn)::bigint,
                       extract(epoch FROM r.replay_lag)::float8
                  FROM pg_replication_slots s
                  LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
                 WHERE s.slot_name = $1
                """, origin);
            cmd.Parameters.AddWithValue(Sql.SlotName(sub.Name));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (await r.ReadAsync(ct))
            {
                active = r.GetBoolean(0);
                lagBytes = r.IsDBNull(1) ? null : Math.Max(0, r.GetInt64(1));
                retained = r.IsDBNull(2) ? null : Math.Max(0, r.GetInt64(2));
                if (lagBytes == 0) lagSeconds = 0;
                else if (!r.IsDBNull(3)) lagSeconds = r.GetDouble(3);
                // A streaming walsender without a measured lag has nothing outstanding to measure (caught up; the
                // bytes left are other databases' WAL or the last keepalive not yet confirmed).
                else if (active) lagSeconds = 0;
                // Not streaming: at most the time since the last applied commit.
                else if (lastCommit is { } t) lagSeconds = Math.Max(0, (DateTime.UtcNow - t.ToUniversalTime()).TotalSeconds);
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            error ??= $"origin {sub.From}: {Daemon.SubscriptionWorker.Describe(e)}";
        }

        var shown = state;
        if (state is "streaming" && !active) shown = error is null ? "stopped" : "failed";
        if (state is "initializing" or "copying" && error is not null && !active) shown = "failed";
        return new SubscriptionStatus(sub.Name, sub.From, sub.To, shown, error, lagBytes, lagSeconds, lastCommit, appliedLsn, rows, txns, rate, retained, active);
    }

    private static SubscriptionStatus Empty(SubscriptionConfig sub, string state, string error) =>
        new(sub.Name, sub.From, sub.To, state, error, null, null, null, null, 0, 0, 0, null, false);
}
