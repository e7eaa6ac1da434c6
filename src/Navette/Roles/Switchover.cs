using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Markers;
using Navette.Setup;
using Npgsql;

namespace Navette.Roles;

/// <summary>What a switchover did.</summary>
/// <param name="Window">From the old origin closed to writes to the new one open: how long clients could not write.</param>
/// <param name="HandedOver">The daemon runs the new subscriptions and the old ones' slots, origins and registrations are dropped.</param>
internal sealed record SwitchoverResult(RoleChange Change, TimeSpan Window, WriteGate.Drained Sessions, IReadOnlyList<string> Actions, bool HandedOver);

/// <summary>
/// <c>navette switchover --to NODE</c>: a planned change of origin in a one-way topology, with nothing lost or applied
/// twice. The old origin is closed to writes (new sessions read-only, sessions drained), every replica applies everything
/// (fences, as <c>navette wait</c>), the sequences are carried over, and then — with no write anywhere — the new
/// origin's slots are created: each starts exactly at the new origin's state, which every node now holds. The file is
/// rewritten, the new origin opened; the daemon (which follows its file) streams the new subscriptions, and the old
/// ones' slots, origins and registrations are dropped as <c>navette apply</c> would.
/// </summary>
internal sealed class Switchover(NavetteConfig config, ILogger log, Action<string>? progress = null)
{
    public static readonly TimeSpan DefaultGrace = TimeSpan.FromSeconds(5);

    /// <summary>How long replicas may take to catch up before writes are stopped (the switchover is refused after it).</summary>
    public TimeSpan CatchUpTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long replicas may take to apply the last writes once stopped (writes are opened again after it).</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the daemon may take to pick up the new file.</summary>
    public TimeSpan HandOverTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public async Task<SwitchoverResult> RunAsync(string to, TimeSpan grace, CancellationToken ct)
    {
        var change = TopologyPlanner.Plan(config, to, keepOldOrigin: true);
        var path = config.SourcePath;
        string Edit(string text) => change.Edit(text, path, config, fenceOldOrigin: false);
        await ConfigFileEditor.CheckAsync(path, Edit, "switchover refused: the file cannot take the change", ct);
        var next = ConfigLoader.Parse(Edit(await File.ReadAllTextAsync(path, ct)), path);
        progress?.Invoke($"switchover {change.OldOrigin} -> {change.NewOrigin}: {change.Describe()}");

        var conns = await RoleConnections.OpenAsync(config, config.Subscriptions.Values.SelectMany(s => new[] { s.From, s.To }), ct);
        try
        {
            await CheckAsync(change, conns, ct);
            var actions = new List<string>();
            var old = conns[change.OldOrigin];
            var clock = new Stopwatch();
            var closed = false;
            var created = new List<string>();
            var written = false;
            WriteGate.Drained drained;
            try
            {
                actions.AddRange(await new Reconciler(next, log, additive: true).RunAsync(ct));
                progress?.Invoke("waiting until every replica is caught up before stopping writes");
                await CatchUpAsync(CatchUpTimeout, "before writes were stopped; nothing was changed on the origin", ct);

                clock.Start();
                closed = true;
                (_, drained) = await WriteGate.CloseAndDrainAsync(old, grace, log, ct);
                progress?.Invoke($"{change.OldOrigin} is read-only ({drained.Idle} idle session(s) ended, {drained.Finished} after their transaction, {drained.Terminated} terminated after the grace)");
                await CatchUpAsync(DrainTimeout, "after writes were stopped", ct);
                var sets = config.Subscriptions.Values.Where(s => s.From == change.OldOrigin).SelectMany(s => s.Sets).Distinct().ToList();
                var tables = await SequenceCarrier.TablesAsync(config, old, sets, ct);
                var sequences = await SequenceCarrier.ReadAsync(old, tables, ct);
                foreach (var (node, conn) in conns.Where(c => c.Key != change.OldOrigin))
                    actions.AddRange(await SequenceCarrier.CarryAsync(sequences, node, conn, tables, ct));

                // Nothing writes anywhere and every node holds the same rows: a slot created now on the new origin starts
                // exactly where the others are.
                var origin = conns[change.NewOrigin];
                foreach (var sub in change.Added)
                {
                    await RoleConnections.CreateSlotAsync(origin, sub, ct);
                    created.Add(Sql.SlotName(sub.Name));
                    actions.Add($"node {sub.From}: slot {Sql.SlotName(sub.Name)} created at the switchover point");
                }
                await ConfigFileEditor.UpdateAsync(path, Edit, ct);
                written = true;
                if (await WriteGate.IsClosedAsync(origin, ct))
                    actions.Add($"node {change.NewOrigin}: read-only setting lifted");
                await WriteGate.OpenAsync(origin, ct);
            }
            catch when (!written)
            {
                await UndoAsync(change, conns, closed, created);
                throw;
            }
            var window = clock.Elapsed;
            progress?.Invoke($"{change.NewOrigin} takes writes; writes were unavailable for {window.TotalSeconds:F2} s");
            actions.Add($"{path}: {change.Describe()}");
            actions.Add($"node {change.OldOrigin}: read-only for its clients (a replica of {change.NewOrigin} now; navette's own sessions still write)");

            var handedOver = await HandOverAsync(change, conns, ct);
            if (handedOver)
                actions.AddRange(await new Reconciler(next, log).RunAsync(ct));
            return new SwitchoverResult(change, window, drained, actions, handedOver);
        }
        finally
        {
            foreach (var c in conns.Values) await c.DisposeAsync();
        }
    }

    /// <summary>Every problem that would stop the switchover halfway, before anything is changed.</summary>
    private async Task CheckAsync(RoleChange change, Dictionary<string, NpgsqlConnection> conns, CancellationToken ct)
    {
        var problems = new List<string>();
        foreach (var sub in config.Subscriptions.Values)
        {
            if (await RoleConnections.SlotActiveAsync(conns[sub.From], Sql.SlotName(sub.Name), ct) is not true)
                problems.Add($"subscription {sub.Name} is not streaming (slot {Sql.SlotName(sub.Name)} on {sub.From} has no reader): start navette run and let it catch up; " +
                             "the switchover waits for every replica to apply everything");
        }
        foreach (var sub in change.Added)
        {
            if (await RoleConnections.SlotActiveAsync(conns[sub.From], Sql.SlotName(sub.Name), ct) is not null)
                problems.Add($"slot {Sql.SlotName(sub.Name)} already exists on {sub.From} (left by an earlier role change?); drop it with SELECT pg_drop_replication_slot('{Sql.SlotName(sub.Name)}') once nothing reads it, or run navette apply");
        }
        if (problems.Count > 0)
            throw new NavetteException($"switchover to {change.NewOrigin} refused; nothing was changed:\n  - " + string.Join("\n  - ", problems));
    }

    private async Task CatchUpAsync(TimeSpan timeout, string when, CancellationToken ct)
    {
        var pending = await new FenceWaiter(config).WaitAsync(timeout, null, ct);
        if (pending.Count > 0)
            throw new NavetteException($"the replicas did not catch up within {timeout.TotalSeconds:F0} s {when}: " +
                                       string.Join("; ", pending.Select(p => $"{p.Subscription} on {p.Node}" + (p.LastError is null ? "" : $" ({p.LastError})"))) +
                                       " (see navette status)");
    }

    /// <summary>
    /// After a failure before the file changed: the old origin takes writes again, the new slots go, and what was prepared
    /// for the new subscriptions (registrations, origins, publications) is dropped as <c>navette apply</c> would.
    /// </summary>
    private async Task UndoAsync(RoleChange change, Dictionary<string, NpgsqlConnection> conns, bool closed, List<string> slots)
    {
        try
        {
            if (closed)
                await WriteGate.OpenAsync(conns[change.OldOrigin], CancellationToken.None);
            foreach (var slot in slots)
            {
                await using var cmd = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", conns[change.NewOrigin]);
                cmd.Parameters.AddWithValue(slot);
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            }
            await new Reconciler(config, log).RunAsync(CancellationToken.None);
            log.LogWarning("switchover to {Node} failed; {Old} takes writes and the topology is unchanged", change.NewOrigin, change.OldOrigin);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or NavetteException)
        {
            log.LogError("switchover to {Node} failed and could not be fully undone ({Error}): on {Old} run ALTER DATABASE ... RESET default_transaction_read_only, on {Node} drop the slots {Slots}, then navette apply",
                change.NewOrigin, Daemon.SubscriptionWorker.Describe(e), change.OldOrigin, change.NewOrigin, string.Join(", ", slots));
        }
    }

    /// <summary>Waits until the daemon dropped the old subscriptions' workers and reads the new slots.</summary>
    private async Task<bool> HandOverAsync(RoleChange change, Dictionary<string, NpgsqlConnection> conns, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var oldBusy = new List<string>();
            foreach (var sub in change.Removed)
                if (await RoleConnections.SlotActiveAsync(conns[sub.From], Sql.SlotName(sub.Name), ct) is true)
                    oldBusy.Add(sub.Name);
            var newIdle = new List<string>();
            foreach (var sub in change.Added)
                if (await RoleConnections.SlotActiveAsync(conns[sub.From], Sql.SlotName(sub.Name), ct) is not true)
                    newIdle.Add(sub.Name);
            if (oldBusy.Count == 0 && newIdle.Count == 0)
                return true;
            if (clock.Elapsed > HandOverTimeout)
            {
                log.LogWarning("navette run did not pick up {File} within {Seconds:F0} s (old subscriptions still streaming: {Old}; new ones not yet: {New}). " +
                               "Nothing is lost: the new slots keep the new origin's changes. Restart navette run, then run navette apply to drop the old subscriptions' slots",
                    config.SourcePath, HandOverTimeout.TotalSeconds, oldBusy.Count == 0 ? "none" : string.Join(", ", oldBusy), newIdle.Count == 0 ? "none" : string.Join(", ", newIdle));
                return false;
            }
            await Task.Delay(200, ct);
        }
    }
}
