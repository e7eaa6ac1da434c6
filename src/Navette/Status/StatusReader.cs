using Navette.Config;
using Navette.Synchronous;
using Npgsql;

namespace Navette.Status;

/// <summary>Reads every subscription's state from its origin (slot, walsender) and its target (catalog, origin progress).</summary>
internal sealed class StatusReader(NavetteConfig config)
{
    public async Task<IReadOnlyList<SubscriptionStatus>> ReadAsync(CancellationToken ct)
    {
        var tasks = config.Subscriptions.Values.Select(async s =>
        {
            var status = await ReadOneAsync(s, ct);
            // The origin's side of a synchronous subscription matters most when its target is down.
            return s.Synchronous && status.Synchronous is null ? status with { Synchronous = await TryReadSynchronousAsync(s, ct) } : status;
        });
        return await Task.WhenAll(tasks);
    }

    private async Task<SynchronousStatus?> TryReadSynchronousAsync(SubscriptionConfig sub, CancellationToken ct)
    {
        try
        {
            await using var origin = new NpgsqlConnection(config.Nodes[sub.From].ToNpgsqlConnectionString());
            await origin.OpenAsync(ct);
            return await ReadSynchronousAsync(origin, sub, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return null;
        }
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
        SynchronousStatus? synchronous = null;
        var copy = new List<CopyTableProgress>();
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
            await r.DisposeAsync();
            if (state is "initializing" or "copying")
                copy = await ReadCopyProgressAsync(target, sub.Name, ct);
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
            await r.DisposeAsync();
            if (copy.Count > 0)
                copy = await EstimateRowsAsync(origin, copy, ct);
            if (sub.Synchronous)
                synchronous = await ReadSynchronousAsync(origin, sub, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            error ??= $"origin {sub.From}: {Daemon.SubscriptionWorker.Describe(e)}";
        }

        var shown = state;
        if (state is "streaming" && !active) shown = error is null ? "stopped" : "failed";
        if (state is "initializing" or "copying" && error is not null && !active) shown = "failed";
        var limits = sub.Limits;
        return new SubscriptionStatus(sub.Name, sub.From, sub.To, shown, error, lagBytes, lagSeconds, lastCommit, appliedLsn, rows, txns, rate, retained, active,
            limits.LagThreshold.TotalSeconds, limits.WalRetention.WarnBytes, limits.WalRetention.LimitBytes,
            Warnings(sub, lagSeconds, retained), copy)
        {
            Synchronous = synchronous,
        };
    }

    private readonly IReadOnlyDictionary<string, SynchronousGroup> _groups = SynchronousGroup.For(config);

    private async Task<SynchronousStatus> ReadSynchronousAsync(NpgsqlConnection origin, SubscriptionConfig sub, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT current_setting('synchronous_standby_names'),
                   w.waiting, w.longest,
                   r.sync_state, extract(epoch FROM r.write_lag)::float8, extract(epoch FROM r.flush_lag)::float8, extract(epoch FROM r.replay_lag)::float8
              FROM (SELECT count(*) AS waiting, extract(epoch FROM max(clock_timestamp() - query_start))::float8 AS longest
                      FROM pg_stat_activity WHERE wait_event = 'SyncRep') w
              LEFT JOIN LATERAL (SELECT * FROM pg_stat_replication WHERE application_name = $1 ORDER BY backend_start DESC LIMIT 1) r ON true
            """, origin);
        cmd.Parameters.AddWithValue(Sql.ApplicationName(sub.Name));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var names = r.GetString(0);
        var listed = StandbyNames.TryParse(names, out var parsed, out _) && parsed.Lists(Sql.ApplicationName(sub.Name));
        var group = _groups[sub.From];
        return new SynchronousStatus(listed, r.IsDBNull(3) ? null : r.GetString(3),
            r.IsDBNull(4) ? null : r.GetDouble(4), r.IsDBNull(5) ? null : r.GetDouble(5), r.IsDBNull(6) ? null : r.GetDouble(6),
            group.Quorum, group.Subscriptions.Count, sub.DegradeAfter?.TotalSeconds,
            names, r.GetInt64(1), r.IsDBNull(2) ? null : r.GetDouble(2));
    }

    private static SubscriptionStatus Empty(SubscriptionConfig sub, string state, string error) =>
        new(sub.Name, sub.From, sub.To, state, error, null, null, null, null, 0, 0, 0, null, false,
            sub.Limits.LagThreshold.TotalSeconds, sub.Limits.WalRetention.WarnBytes, sub.Limits.WalRetention.LimitBytes, [], []);

    /// <summary>What is not yet an error but needs the operator: WAL piling up behind the slot, lag over its threshold.</summary>
    internal static List<string> Warnings(SubscriptionConfig sub, double? lagSeconds, long? retained)
    {
        var warnings = new List<string>();
        if (WalWarning(sub, retained) is { } wal)
            warnings.Add(wal);
        if (lagSeconds is { } lag && lag > sub.Limits.LagThreshold.TotalSeconds)
            warnings.Add($"lag {lag:F0} s is over lag_threshold ({sub.Limits.LagThreshold.TotalSeconds:F0} s)");
        return warnings;
    }

    /// <summary>The warning for a slot keeping more WAL than wal_retention.warn, else null.</summary>
    internal static string? WalWarning(SubscriptionConfig sub, long? retained)
    {
        var wal = sub.Limits.WalRetention;
        if (retained is not { } bytes || bytes <= wal.WarnBytes) return null;
        return $"slot {Sql.SlotName(sub.Name)} retains {ConfigUnits.FormatSize(bytes)} of WAL on {sub.From}, over wal_retention.warn ({ConfigUnits.FormatSize(wal.WarnBytes)})"
               + (wal.LimitBytes is { } limit ? $"; at {ConfigUnits.FormatSize(limit)} (wal_retention.limit) the slot is dropped and the subscription needs navette resync" : "");
    }

    private static async Task<List<CopyTableProgress>> ReadCopyProgressAsync(NpgsqlConnection target, string subscription, CancellationToken ct)
    {
        var tables = new List<CopyTableProgress>();
        await using var cmd = new NpgsqlCommand("""
            SELECT table_name, rows_copied, bytes_copied, started_at IS NOT NULL, finished_at IS NOT NULL
              FROM navette.copy_progress WHERE subscription = $1 ORDER BY table_name
            """, target);
        cmd.Parameters.AddWithValue(subscription);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            tables.Add(new CopyTableProgress(r.GetString(0), r.GetInt64(1), r.GetInt64(2), null, r.GetBoolean(3), r.GetBoolean(4)));
        return tables;
    }

    /// <summary>The origin's row estimates (reltuples, summed over partitions) for the tables being copied.</summary>
    private static async Task<List<CopyTableProgress>> EstimateRowsAsync(NpgsqlConnection origin, List<CopyTableProgress> tables, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT t.name, (SELECT sum(c.reltuples)::bigint FROM pg_partition_tree(to_regclass(t.name)) p JOIN pg_class c ON c.oid = p.relid
                             WHERE p.isleaf AND c.reltuples >= 0)
              FROM unnest($1::text[]) AS t(name)
            """, origin);
        cmd.Parameters.AddWithValue(tables.Select(t => t.Table).ToArray());
        var estimates = new Dictionary<string, long>(StringComparer.Ordinal);
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
                if (!r.IsDBNull(1)) estimates[r.GetString(0)] = r.GetInt64(1);
        return tables.Select(t => estimates.TryGetValue(t.Table, out var e) && e > 0 ? t with { EstimatedRows = e } : t).ToList();
    }
}
