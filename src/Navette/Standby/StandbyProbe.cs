using System.Diagnostics;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Standby;

/// <summary>Waits on a standby's progress, for the commands that change one.</summary>
internal static class StandbyProbe
{
    private static readonly TimeSpan FirstWalTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Waits until a standby just started receives WAL, so a command ends with a working standby or says why not.</summary>
    public static async Task WaitForWalAsync(NodeConfig primary, StandbyConfig standby, NpgsqlConnection primaryConn, Action<string> say, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var server = new LocalServer(standby.PgData);
        while (clock.Elapsed < FirstWalTimeout)
        {
            if (!server.IsRunning)
                throw new NavetteException($"standby {standby.Name} stopped after it started{server.LogTail()}");
            if (standby.Mode == StandbyMode.Streaming)
            {
                var state = await PgQuery.ScalarAsync<string>(primaryConn, "SELECT state FROM pg_stat_replication WHERE application_name = $1", ct, standby.Name);
                if (state == "streaming")
                {
                    say($"standby {standby.Name} is streaming from {primary.Name}");
                    return;
                }
            }
            else if (RestoreProgress.Read(standby.PgData).TryGetValue(RestoreProgress.Restored, out var restored))
            {
                say($"standby {standby.Name} restores from {standby.Archive} (last: {restored.Segment})");
                return;
            }

            await Task.Delay(200, ct);
        }

        say($"warning: standby {standby.Name} runs but has not {(standby.Mode == StandbyMode.Streaming ? "started streaming" : "restored a WAL file")} "
            + $"within {FirstWalTimeout.TotalSeconds:F0} s; see navette standby status and {server.LogFile}");
    }

    /// <summary>
    /// How far a standby has received WAL: what it flushed from the stream (pg_last_wal_receive_lsn, or the walsender's
    /// flush_lsn when it answers no queries), or for archive recovery the end of the last segment wal-restore handed over.
    /// Received is enough before a promotion: PostgreSQL replays everything it has before it ends recovery.
    /// </summary>
    public static async Task<NpgsqlLogSequenceNumber?> ReceivedAsync(NodeConfig primary, StandbyConfig s, NpgsqlConnection? primaryConn, long segmentSize, CancellationToken ct)
    {
        if (s.Mode == StandbyMode.Archive)
        {
            return RestoreProgress.Read(s.PgData).TryGetValue(RestoreProgress.Restored, out var restored)
                ? new NpgsqlLogSequenceNumber(WalFileName.StartLsn(restored.Segment, segmentSize) + (ulong)segmentSize)
                : null;
        }

        if (s.Hot)
        {
            try
            {
                await using var conn = await StandbyConnInfo.OpenAsync(StandbyConnInfo.ToStandby(primary, s), ct);
                return await PgQuery.ScalarAsync<NpgsqlLogSequenceNumber?>(conn, "SELECT pg_last_wal_receive_lsn()", ct);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                return null;
            }
        }

        return primaryConn is null ? null
            : await PgQuery.ScalarAsync<NpgsqlLogSequenceNumber?>(primaryConn, "SELECT flush_lsn FROM pg_stat_replication WHERE application_name = $1 ORDER BY backend_start DESC LIMIT 1", ct, s.Name);
    }
}
