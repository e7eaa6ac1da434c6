using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Standby;

/// <summary>
/// Reads each standby's state from both ends: the primary (pg_stat_replication, its slot, pg_stat_archiver and the
/// .ready files waiting for archive_command) and the standby (pg_last_wal_receive_lsn, pg_last_wal_replay_lsn,
/// pg_last_xact_replay_timestamp when hot; pg_ctl's view and navette wal-restore's progress when not).
/// </summary>
internal sealed class StandbyStatusReader(NavetteConfig config)
{
    public async Task<IReadOnlyList<StandbyStatus>> ReadAsync(CancellationToken ct) =>
        await Task.WhenAll(config.Standbys.Values.Select(s => ReadOneAsync(s, ct)));

    private sealed class Reading
    {
        public string State = "unknown";
        public List<string> Errors = [];
        public bool? InRecovery;
        public NpgsqlLogSequenceNumber? Received, Replayed, PrimaryLsn;
        public DateTime? LastCommit;
        public string? WalReceiver, SenderState, LastRestored, LastArchived, ArchiveError;
        public double? ReplayLag;
        public bool? SlotActive;
        public long? SlotRetained;
        public int? Backlog;
        public bool Running, Answered, PrimaryReached;
    }

    public async Task<StandbyStatus> ReadOneAsync(StandbyConfig s, CancellationToken ct)
    {
        var r = new Reading();
        var primary = config.Nodes[s.From];
        await ReadStandbyAsync(primary, s, r, ct);
        await ReadPrimaryAsync(primary, s, r, ct);
        if (!r.Answered && r.Running)
            ReadWithoutQueries(s, r);

        if (s.Mode == StandbyMode.Archive && RestoreProgress.Read(s.PgData).TryGetValue(RestoreProgress.Restored, out var restored))
            r.LastRestored = restored.Segment;
        r.State = StateOf(s, r);
        long? lagBytes = r.PrimaryLsn is { } p && r.Replayed is { } q ? Math.Max(0, (long)((ulong)p - Math.Min((ulong)p, (ulong)q))) : null;
        double? lagSeconds = lagBytes == 0 ? 0
            : r.ReplayLag is { } lag ? lag
            : lagBytes > 0 && r.LastCommit is { } t ? Math.Max(0, (DateTime.UtcNow - t.ToUniversalTime()).TotalSeconds)
            : null;
        if (r.State is "streaming" && lagBytes > 0 && r.ReplayLag is null)
            lagSeconds = 0; // a walsender without a measured lag has nothing outstanding (its last keepalive is not yet answered)
        return new StandbyStatus(s.Name, s.From, StandbyConfig.ModeName(s.Mode), s.Hot, r.State,
            r.Errors.Count == 0 ? null : string.Join("; ", r.Errors),
            r.Received?.ToString(), r.Replayed?.ToString(), lagBytes, lagSeconds, r.LastCommit, r.LastRestored,
            s.Slot ? s.SlotName : null, r.SlotActive, r.SlotRetained, r.Backlog, r.LastArchived, r.ArchiveError);
    }

    private static async Task ReadStandbyAsync(NodeConfig primary, StandbyConfig s, Reading r, CancellationToken ct)
    {
        var local = new LocalServer(s.PgData);
        r.Running = local.IsRunning;
        try
        {
            await using var conn = await StandbyConnInfo.OpenAsync(StandbyConnInfo.ToStandby(primary, s), ct);
            await using var cmd = new NpgsqlCommand("""
                SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(),
                       (SELECT status FROM pg_stat_wal_receiver)
                """, conn);
            await using var q = await cmd.ExecuteReaderAsync(ct);
            await q.ReadAsync(ct);
            r.Answered = true;
            r.Running = true;
            r.InRecovery = q.GetBoolean(0);
            r.Received = q.IsDBNull(1) ? null : q.GetFieldValue<NpgsqlLogSequenceNumber>(1);
            r.Replayed = q.IsDBNull(2) ? null : q.GetFieldValue<NpgsqlLogSequenceNumber>(2);
            r.LastCommit = q.IsDBNull(3) ? null : q.GetDateTime(3);
            r.WalReceiver = q.IsDBNull(4) ? null : q.GetString(4);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.CannotConnectNow)
        {
            // "the database system is starting up" or, without hot_standby, "not accepting connections": it runs.
            r.Running = true;
            if (s.Hot)
                r.Errors.Add("not accepting queries yet: " + e.MessageText);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            if (s.Hot || !r.Running)
                r.Errors.Add($"standby at {s.Host}:{s.Port}: {Daemon.SubscriptionWorker.Describe(e)}");
        }
    }

    private static async Task ReadPrimaryAsync(NodeConfig primary, StandbyConfig s, Reading r, CancellationToken ct)
    {
        try
        {
            await using var conn = await StandbyConnInfo.OpenAsync(primary.ConnInfo, ct);
            r.PrimaryReached = true;
            if (await PgQuery.ScalarAsync<bool>(conn, "SELECT pg_is_in_recovery()", ct))
            {
                r.Errors.Add($"node {s.From} is itself in recovery (was it demoted? navette standby rewind records that)");
                return;
            }

            r.PrimaryLsn = await PgQuery.ScalarAsync<NpgsqlLogSequenceNumber>(conn, "SELECT pg_current_wal_lsn()", ct);
            await using (var cmd = new NpgsqlCommand("""
                SELECT state, flush_lsn, replay_lsn, extract(epoch FROM replay_lag)::float8
                  FROM pg_stat_replication WHERE application_name = $1 ORDER BY backend_start DESC LIMIT 1
                """, conn))
            {
                cmd.Parameters.AddWithValue(s.Name);
                await using var q = await cmd.ExecuteReaderAsync(ct);
                if (await q.ReadAsync(ct))
                {
                    r.SenderState = q.GetString(0);
                    if (!r.Answered)
                    {
                        r.Received = q.IsDBNull(1) ? null : q.GetFieldValue<NpgsqlLogSequenceNumber>(1);
                        r.Replayed = q.IsDBNull(2) ? null : q.GetFieldValue<NpgsqlLogSequenceNumber>(2);
                    }

                    r.ReplayLag = q.IsDBNull(3) ? null : q.GetDouble(3);
                }
            }

            if (s.Slot)
                await ReadSlotAsync(conn, s, r, ct);
            if (s.Archive is not null)
                await ReadArchiverAsync(conn, r, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            r.Errors.Add($"node {s.From}: {Daemon.SubscriptionWorker.Describe(e)}");
        }
    }

    private static async Task ReadSlotAsync(NpgsqlConnection conn, StandbyConfig s, Reading r, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT active, (pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1", conn);
        cmd.Parameters.AddWithValue(s.SlotName);
        await using var q = await cmd.ExecuteReaderAsync(ct);
        if (!await q.ReadAsync(ct))
        {
            r.Errors.Add($"slot {s.SlotName} is missing on node {s.From}: WAL the standby still needs may be removed; recreate the standby if it cannot catch up");
            return;
        }

        r.SlotActive = q.GetBoolean(0);
        r.SlotRetained = q.IsDBNull(1) ? null : Math.Max(0, q.GetInt64(1));
    }

    private static async Task ReadArchiverAsync(NpgsqlConnection conn, Reading r, CancellationToken ct)
    {
        await using (var cmd = new NpgsqlCommand("""
            SELECT last_archived_wal, CASE WHEN last_failed_time > coalesce(last_archived_time, '-infinity')
                                           THEN last_failed_wal || ' failed at ' || last_failed_time END
              FROM pg_stat_archiver
            """, conn))
        {
            await using var q = await cmd.ExecuteReaderAsync(ct);
            await q.ReadAsync(ct);
            r.LastArchived = q.IsDBNull(0) ? null : q.GetString(0);
            r.ArchiveError = q.IsDBNull(1) ? null : "archive_command is failing: " + q.GetString(1) + " (see the primary's server log)";
        }

        try
        {
            r.Backlog = (int)await PgQuery.ScalarAsync<long>(conn, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'", ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            // pg_ls_archive_statusdir needs pg_monitor: the backlog stays unknown.
        }
    }

    /// <summary>A standby without hot_standby answers no query: its progress comes from the primary or from wal-restore.</summary>
    private static void ReadWithoutQueries(StandbyConfig s, Reading r)
    {
        r.InRecovery = File.Exists(Path.Combine(s.PgData, StandbySettings.SignalFile));
        if (s.Mode != StandbyMode.Archive)
            return;
        var progress = RestoreProgress.Read(s.PgData);
        var segmentSize = WalRestorer.SegmentSizeOf(s.PgData);
        if (progress.TryGetValue(RestoreProgress.Wanted, out var wanted) && segmentSize is { } size)
            r.Replayed = new NpgsqlLogSequenceNumber(WalFileName.StartLsn(wanted.Segment, size));
    }

    private static string StateOf(StandbyConfig s, Reading r)
    {
        if (!r.Running)
            return new LocalServer(s.PgData).IsDataDirectory || r.Errors.Count > 0 ? "down" : "unknown";
        if (r.InRecovery == false)
        {
            r.Errors.Add($"it is no longer in recovery (promoted outside navette?); navette standby promote {s.Name} records a promotion as a node");
            return "promoted";
        }

        if (!r.Answered && s.Hot)
            return "starting";
        if (s.Mode == StandbyMode.Streaming)
        {
            return r.SenderState switch
            {
                "streaming" => "streaming",
                "catchup" => "catching up",
                "startup" or "backup" => "starting",
                _ => Disconnected(s, r),
            };
        }

        return "archive recovery";
    }

    private static string Disconnected(StandbyConfig s, Reading r)
    {
        if (r.PrimaryReached)
            r.Errors.Add($"no walsender on node {s.From} serves it (walreceiver: {r.WalReceiver ?? "not running"}); see its log {Path.Combine(s.PgData, LocalServer.LogFileName)}");
        return "disconnected";
    }
}
