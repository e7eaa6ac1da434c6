using System.Diagnostics;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Standby;

/// <summary>
/// <c>navette standby promote N</c>: when the primary is reachable, first waits until the standby has received
/// everything the primary had written when the command started (archive mode: after a WAL switch that pushes the
/// current segment to the archive), so a planned promotion loses nothing; then pg_ctl promote, waits until it accepts
/// writes, drops its slot on the old primary, and records it as a node of the same name in the configuration file.
/// </summary>
internal sealed class StandbyPromoter(NavetteConfig config, Action<string> say)
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(5);

    public async Task<NodeConfig> RunAsync(string name, bool waitForPrimary, TimeSpan timeout, CancellationToken ct)
    {
        LocalServer.RequireTools();
        if (!config.Standbys.TryGetValue(name, out var s))
        {
            throw new NavetteException(config.Nodes.ContainsKey(name)
                ? $"'{name}' is a node in {config.SourcePath}, not a standby: it is already a primary"
                : $"unknown standby '{name}'; standbys in {config.SourcePath}: {(config.Standbys.Count == 0 ? "(none)" : string.Join(", ", config.Standbys.Keys))}"
                  + ConfigLoader.Suggestion(name, config.Standbys.Keys));
        }

        ConfigFileEditor.CheckWritable(config.SourcePath);
        var primary = config.Nodes[s.From];
        var server = new LocalServer(s.PgData);
        if (!server.IsDataDirectory)
            throw new NavetteException($"standby {name}: no data directory at {s.PgData}; run navette on the machine that holds it");
        if (!server.IsRunning)
        {
            throw new NavetteException($"standby {name} is not running; start it first (pg_ctl -D {s.PgData} -l {server.LogFile} start) "
                + "so it replays the WAL it has, then promote it");
        }

        if (waitForPrimary)
            await CatchUpAsync(primary, s, timeout, ct);

        say($"promoting standby {name} (pg_ctl promote -D {s.PgData})");
        var clock = Stopwatch.StartNew();
        await server.PromoteAsync(timeout, ct);
        var conninfo = StandbyConnInfo.ToStandby(primary, s);
        await WaitWritableAsync(name, conninfo, timeout, ct);
        say($"standby {name} accepts writes at {s.Host}:{s.Port} ({clock.Elapsed.TotalSeconds:F1} s after the promote request)");

        if (s.Slot)
            await DropSlotAsync(primary, s, ct);
        var updated = await ConfigFileEditor.UpdateAsync(config.SourcePath,
            text => ConfigFileEditor.SetNode(ConfigFileEditor.RemoveStandby(text, config.SourcePath, name), config.SourcePath, name, conninfo), ct);
        say($"recorded {name} as a node in {config.SourcePath} (its standby entry is gone)");
        var followers = updated.Standbys.Values.Where(o => o.From == s.From).Select(o => o.Name).ToList();
        say($"node {s.From} is not changed: if it still runs it accepts writes of its own. Stop it, or make it follow {name} with: "
            + $"navette standby rewind {s.From} --from {name}"
            + (followers.Count > 0 ? $" (standbys {string.Join(", ", followers)} still follow {s.From})" : string.Empty));
        return updated.Nodes[name];
    }

    private async Task CatchUpAsync(NodeConfig primary, StandbyConfig s, TimeSpan timeout, CancellationToken ct)
    {
        NpgsqlConnection conn;
        try
        {
            conn = await StandbyConnInfo.OpenAsync(primary.ConnInfo, ct);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            say($"node {primary.Name} is unreachable ({Daemon.SubscriptionWorker.Describe(e)}): promoting {s.Name} with the WAL it has");
            return;
        }

        await using (conn)
        {
            var facts = await PrimaryFacts.ReadAsync(conn, ct);
            if (facts.InRecovery)
            {
                say($"node {primary.Name} is in recovery itself: promoting {s.Name} with the WAL it has");
                return;
            }

            NpgsqlLogSequenceNumber target;
            if (s.Mode == StandbyMode.Archive)
            {
                // The current segment would only reach the archive at archive_timeout: switch now.
                await PgQuery.ExecAsync(conn, "SELECT pg_logical_emit_message(false, 'navette', 'promote')", ct);
                target = await PgQuery.ScalarAsync<NpgsqlLogSequenceNumber>(conn, "SELECT pg_switch_wal()", ct);
            }
            else
            {
                target = await PgQuery.ScalarAsync<NpgsqlLogSequenceNumber>(conn, "SELECT pg_current_wal_flush_lsn()", ct);
            }

            await KeepWalForRewindAsync(conn, primary, s, ct);
            say($"waiting for {s.Name} to receive node {primary.Name}'s WAL up to {target} (pass --no-wait to promote at once)");
            var clock = Stopwatch.StartNew();
            var lastSaid = TimeSpan.Zero;
            while (true)
            {
                var received = await StandbyProbe.ReceivedAsync(primary, s, conn, facts.SegmentSize, ct);
                if (received is { } r && (ulong)r >= (ulong)target)
                {
                    say($"standby {s.Name} has received up to {r}");
                    return;
                }

                if (clock.Elapsed > timeout)
                {
                    throw new NavetteException($"standby {s.Name} received WAL up to {received?.ToString() ?? "an unknown position"} but node {primary.Name} had written up to {target} "
                        + $"when promote started, and it did not catch up within {timeout.TotalSeconds:F0} s; nothing was changed. "
                        + $"See navette standby status, or promote anyway with --no-wait (what {primary.Name} committed after that position would be missing on {s.Name})");
                }

                if (clock.Elapsed - lastSaid > ProgressEvery)
                {
                    lastSaid = clock.Elapsed;
                    say($"  {s.Name} has received up to {received?.ToString() ?? "?"}; waiting");
                }

                await Task.Delay(100, ct);
            }
        }
    }

    /// <summary>
    /// A physical slot reserved now starts at the primary's last checkpoint, before the point where the two servers are
    /// about to diverge: that is the WAL pg_rewind will need to turn the old primary into a standby of the promoted one.
    /// </summary>
    private async Task KeepWalForRewindAsync(NpgsqlConnection conn, NodeConfig primary, StandbyConfig s, CancellationToken ct)
    {
        var slot = StandbyConfig.RewindSlotNameFor(s.Name);
        try
        {
            await PgQuery.ExecAsync(conn, """
                SELECT pg_create_physical_replication_slot($1, true)
                 WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)
                """, ct, slot);
            say($"node {primary.Name}: slot {slot} keeps its WAL from before the promotion, for navette standby rewind {primary.Name} --from {s.Name} "
                + $"(which drops it); if {primary.Name} is retired instead, drop it: SELECT pg_drop_replication_slot('{slot}')");
        }
        catch (PostgresException e)
        {
            say($"node {primary.Name}: could not create slot {slot} ({e.MessageText}); a later rewind of {primary.Name} needs its WAL from before the promotion (wal_keep_size or an archive)");
        }
    }

    private static async Task WaitWritableAsync(string name, string conninfo, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var conn = await StandbyConnInfo.OpenAsync(conninfo, ct);
                // Assigning a transaction id is refused during recovery: it proves writes are accepted.
                await PgQuery.ExecAsync(conn, "SELECT pg_current_xact_id()", ct);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException && clock.Elapsed < timeout)
            {
                await Task.Delay(100, ct);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                throw new NavetteException($"{name} was promoted but does not accept writes after {timeout.TotalSeconds:F0} s: {Daemon.SubscriptionWorker.Describe(e)}");
            }
        }
    }

    /// <summary>The promoted server no longer reads its slot on the old primary, which would keep WAL there forever.</summary>
    private async Task DropSlotAsync(NodeConfig primary, StandbyConfig s, CancellationToken ct)
    {
        try
        {
            await using var conn = await StandbyConnInfo.OpenAsync(primary.ConnInfo, ct);
            var clock = Stopwatch.StartNew();
            while (await PgQuery.ScalarAsync<bool?>(conn, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", ct, s.SlotName) is { } active)
            {
                if (!active)
                {
                    await PgQuery.ExecAsync(conn, "SELECT pg_drop_replication_slot($1)", ct, s.SlotName);
                    say($"node {primary.Name}: slot {s.SlotName} dropped");
                    return;
                }

                if (clock.Elapsed > TimeSpan.FromSeconds(30))
                    break;
                await Task.Delay(200, ct);
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30))
                say($"node {primary.Name}: slot {s.SlotName} is still in use; drop it once free: SELECT pg_drop_replication_slot('{s.SlotName}')");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            say($"node {primary.Name} is unreachable, so its slot {s.SlotName} is left: drop it when it is back (SELECT pg_drop_replication_slot('{s.SlotName}')), "
                + $"or let navette standby rewind {primary.Name} do it ({Daemon.SubscriptionWorker.Describe(e)})");
        }
    }
}
