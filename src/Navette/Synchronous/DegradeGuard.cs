using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Synchronous;

/// <summary>
/// <c>degrade_after</c> for the synchronous subscriptions of one origin that this daemon runs. Every
/// <see cref="Interval"/> it reads the origin's WAL flush position, the subscriptions' walsenders and
/// synchronous_standby_names. A subscription is behind by the age of the oldest flush position it has not yet confirmed
/// (nothing, when it confirmed everything its walsender sent); away when it has no walsender. Listed and behind or away
/// for <c>degrade_after</c>: its name is taken out of the setting, loudly. Not listed, streaming and behind by less
/// than <see cref="RestoreWithin"/>: it goes back. The state is the setting itself, so a restarted daemon carries on.
/// </summary>
internal sealed class DegradeGuard(NavetteConfig config, SynchronousGroup group, IReadOnlyList<SubscriptionConfig> guarded, ILogger log)
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    /// <summary>A degraded subscription is listed again once it has confirmed every position older than this.</summary>
    public static readonly TimeSpan RestoreWithin = TimeSpan.FromSeconds(1);

    private readonly List<(TimeSpan At, NpgsqlLogSequenceNumber Lsn)> _samples = new();
    private readonly Dictionary<string, TimeSpan> _awaySince = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TimeSpan> _degradedAt = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private bool _rightsReported;

    private TimeSpan Retention => TimeSpan.FromTicks(guarded.Max(s => s.DegradeAfter!.Value.Ticks) * 2) + TimeSpan.FromSeconds(10);

    public async Task RunAsync(CancellationToken ct)
    {
        var cs = new NpgsqlConnectionStringBuilder(config.Nodes[group.Origin].ToNpgsqlConnectionString()) { ApplicationName = "navette-degrade-guard" }.ConnectionString;
        NpgsqlConnection? conn = null;
        var failing = false;
        log.LogInformation("node {Origin}: degrade guard watching {Subscriptions}", group.Origin,
            string.Join(", ", guarded.Select(s => $"{s.Name} (degrade_after {s.DegradeAfter!.Value.TotalSeconds:0.###} s)")));
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    if (conn is null)
                    {
                        conn = new NpgsqlConnection(cs);
                        await conn.OpenAsync(ct);
                    }
                    await TickAsync(conn, ct);
                    failing = false;
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    // The origin is down or restarting: no commit waits there meanwhile, and the away clocks keep running.
                    if (!failing)
                        log.LogDebug("node {Origin}: degrade guard cannot read the origin: {Error}", group.Origin, Daemon.SubscriptionWorker.Describe(e));
                    failing = true;
                    if (conn is not null) await conn.DisposeAsync();
                    conn = null;
                }
                await Task.Delay(Interval, ct);
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            if (conn is not null) await conn.DisposeAsync();
        }
    }

    private sealed record Sender(string State, NpgsqlLogSequenceNumber? Sent, NpgsqlLogSequenceNumber? Flush);

    private async Task TickAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var now = _clock.Elapsed;
        NpgsqlLogSequenceNumber flushed;
        await using (var cmd = new NpgsqlCommand("SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_flush_lsn() END", conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            await r.ReadAsync(ct);
            if (r.GetBoolean(0)) return; // a standby commits nothing
            flushed = r.GetFieldValue<NpgsqlLogSequenceNumber>(1);
        }
        if (_samples.Count == 0 || _samples[^1].Lsn < flushed)
            _samples.Add((now, flushed));
        while (_samples.Count > 1 && now - _samples[0].At > Retention)
            _samples.RemoveAt(0);

        var senders = new Dictionary<string, Sender>(StringComparer.OrdinalIgnoreCase);
        await using (var cmd = new NpgsqlCommand(
            "SELECT application_name, state, sent_lsn, flush_lsn FROM pg_stat_replication WHERE application_name = ANY($1) ORDER BY flush_lsn DESC NULLS LAST", conn))
        {
            cmd.Parameters.AddWithValue(guarded.Select(s => Sql.ApplicationName(s.Name)).ToArray());
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                senders.TryAdd(r.GetString(0), new Sender(r.IsDBNull(1) ? "" : r.GetString(1),
                    r.IsDBNull(2) ? null : r.GetFieldValue<NpgsqlLogSequenceNumber>(2), r.IsDBNull(3) ? null : r.GetFieldValue<NpgsqlLogSequenceNumber>(3)));
        }

        var setting = await StandbyNamesSetting.ReadAsync(conn, ct);
        if (setting.ParseProblem is not null) return;
        foreach (var sub in guarded)
        {
            var name = Sql.ApplicationName(sub.Name);
            var (behind, why) = Behind(sub.Name, senders.GetValueOrDefault(name), now);
            var listed = setting.Parsed.Lists(name);
            if (listed && behind >= sub.DegradeAfter!.Value)
                await DegradeAsync(conn, sub, setting, behind, why, now, ct);
            else if (!listed && why == "streaming" && behind < RestoreWithin)
                await RestoreAsync(conn, sub, setting, now, ct);
        }
    }

    /// <summary>How long the subscription has kept the origin's commits waiting (or would, were it listed), and why.</summary>
    private (TimeSpan Behind, string Why) Behind(string sub, Sender? sender, TimeSpan now)
    {
        if (sender is null || sender.State != "streaming" || sender.Flush is null)
        {
            if (!_awaySince.TryGetValue(sub, out var since))
                _awaySince[sub] = since = now;
            return (now - since, "away");
        }
        _awaySince.Remove(sub);
        // Everything the walsender sent is confirmed: whatever the origin wrote since is not this replica's to confirm yet.
        if (sender.Sent is { } sent && sender.Flush >= sent)
            return (TimeSpan.Zero, "streaming");
        foreach (var (at, lsn) in _samples)
            if (lsn > sender.Flush)
                return (now - at, "streaming");
        return (TimeSpan.Zero, "streaming");
    }

    private async Task DegradeAsync(NpgsqlConnection conn, SubscriptionConfig sub, StandbyNamesSetting setting, TimeSpan behind, string why, TimeSpan now, CancellationToken ct)
    {
        var name = Sql.ApplicationName(sub.Name);
        if (!CanChange(setting, sub, "take it out of")) return;
        var (_, after) = await StandbyNamesSetting.ChangeAsync(conn,
            s => s.Parsed.Combine(Ordered(s.Parsed.NavetteNames.Where(n => !n.Equals(name, StringComparison.OrdinalIgnoreCase))), group.Quorum, out _), ct);
        if (after is null) return;
        _degradedAt[sub.Name] = now;
        var state = why == "away" ? "away (no walsender streaming to it)" : "behind";
        log.LogError(
            "DEGRADED: subscription {Subscription}: {Target} has been {State} for {Seconds:F1} s (degrade_after {Limit:0.###} s); {Name} removed from synchronous_standby_names on node {Origin}, now '{Value}'. "
            + "Commits on {Origin} no longer wait for {Target}: if {Origin} is lost now, what {Target} has not yet applied is lost with it. It is listed again once {Target} is back and caught up",
            sub.Name, sub.To, state, behind.TotalSeconds, sub.DegradeAfter!.Value.TotalSeconds, name, group.Origin, after.Format(), group.Origin, sub.To, group.Origin, sub.To, sub.To);
    }

    private async Task RestoreAsync(NpgsqlConnection conn, SubscriptionConfig sub, StandbyNamesSetting setting, TimeSpan now, CancellationToken ct)
    {
        var name = Sql.ApplicationName(sub.Name);
        if (!CanChange(setting, sub, "list it again in")) return;
        var (_, after) = await StandbyNamesSetting.ChangeAsync(conn,
            s => s.Parsed.Lists(name) ? null : s.Parsed.Combine(Ordered(s.Parsed.NavetteNames.Append(name)), group.Quorum, out _), ct);
        if (after is null) return;
        var degraded = _degradedAt.Remove(sub.Name, out var at) ? $"after {(now - at).TotalSeconds:F1} s degraded" : "(it was not listed when this daemon started)";
        log.LogWarning("RESTORED: subscription {Subscription}: {Target} is back and caught up {Degraded}; {Name} listed again in synchronous_standby_names on node {Origin}, now '{Value}': commits there wait for it again",
            sub.Name, sub.To, degraded, name, group.Origin, after.Format());
    }

    /// <summary>The group's names first in file order, then any other navette name already listed (another daemon's).</summary>
    private List<string> Ordered(IEnumerable<string> names)
    {
        var set = names.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var ordered = group.Names.Where(set.Contains).ToList();
        ordered.AddRange(set.Where(n => !ordered.Contains(n, StringComparer.OrdinalIgnoreCase)));
        return ordered;
    }

    private bool CanChange(StandbyNamesSetting setting, SubscriptionConfig sub, string what)
    {
        if (setting.CanChange) return true;
        if (!_rightsReported)
            log.LogError("subscription {Subscription}: degrade_after needs to {What} synchronous_standby_names on node {Origin}, but the role navette connects with lacks "
                         + "ALTER SYSTEM on synchronous_standby_names or EXECUTE on pg_reload_conf(); grant them (GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO ...; "
                         + "GRANT EXECUTE ON FUNCTION pg_reload_conf() TO ...) or connect as a superuser", sub.Name, what, group.Origin);
        _rightsReported = true;
        return false;
    }
}
