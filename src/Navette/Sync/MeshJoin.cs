using Microsoft.Extensions.Logging;
using Navette.Daemon;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Sync;

/// <summary>
/// How a mesh member X gets its place among the others without a gap or a duplicate. X copies from the seed S; its
/// subscription from each other member Y must start exactly after the last of Y's transactions that S had applied
/// when the copy's snapshot was taken. S records that position with every apply (<c>navette.subscription.last_end_lsn</c>),
/// so reading it under the snapshot gives it exactly. Before the snapshot, a fence written on each Y is awaited on S:
/// that puts S's position past the slot Y → X (created by navette apply), from which the stream can then start.
/// </summary>
internal sealed class MeshJoin(SubscriptionPlan plan, ILogger log)
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan Report = TimeSpan.FromSeconds(15);
    private readonly Dictionary<string, NpgsqlLogSequenceNumber> _positions = new();

    public IReadOnlyDictionary<string, NpgsqlLogSequenceNumber> Positions => _positions;

    /// <summary>Writes a fence on every other member and waits until the seed (this copy's source) has applied all of them.</summary>
    public async Task FenceOthersAsync(CancellationToken ct)
    {
        if (plan.Joiners.Count == 0) return;
        var fences = new List<(JoinerPlan Joiner, Guid Id)>();
        foreach (var joiner in plan.Joiners)
        {
            var id = Guid.NewGuid();
            await using var conn = new NpgsqlConnection(joiner.FromConnectionString);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("INSERT INTO navette.fence (id, node) VALUES ($1, $2)", conn);
            cmd.Parameters.AddWithValue(id);
            cmd.Parameters.AddWithValue(joiner.FromNode);
            await cmd.ExecuteNonQueryAsync(ct);
            fences.Add((joiner, id));
        }
        await using var seed = new NpgsqlConnection(plan.SourceConnectionString);
        await seed.OpenAsync(ct);
        var since = DateTime.UtcNow;
        var reported = since;
        while (true)
        {
            await using var cmd = new NpgsqlCommand("SELECT id FROM navette.fence WHERE id = ANY($1)", seed);
            cmd.Parameters.AddWithValue(fences.Select(f => f.Id).ToArray());
            var arrived = new HashSet<Guid>();
            await using (var r = await cmd.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) arrived.Add(r.GetGuid(0));
            var waiting = fences.Where(f => !arrived.Contains(f.Id)).ToList();
            if (waiting.Count == 0) return;
            if (DateTime.UtcNow - reported >= Report)
            {
                reported = DateTime.UtcNow;
                log.LogInformation("subscription {Subscription}: before copying, waiting for {Seed} to apply what {Nodes} committed (subscriptions {Subs} must be running) for {Seconds:F0} s",
                    plan.Name, plan.FromNode, string.Join(", ", waiting.Select(w => w.Joiner.FromNode)), string.Join(", ", waiting.Select(w => w.Joiner.SeedSubscription)),
                    (DateTime.UtcNow - since).TotalSeconds);
            }
            await Task.Delay(Poll, ct);
        }
    }

    /// <summary>Under the copy's snapshot on the seed: how far the seed had applied each other member.</summary>
    public async Task ReadPositionsAsync(NpgsqlConnection seed, NpgsqlTransaction snapshot, CancellationToken ct)
    {
        if (plan.Joiners.Count == 0) return;
        await using var cmd = new NpgsqlCommand("SELECT name, last_end_lsn::text FROM navette.subscription WHERE name = ANY($1) AND last_end_lsn IS NOT NULL", seed, snapshot);
        cmd.Parameters.AddWithValue(plan.Joiners.Select(j => j.SeedSubscription).ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var bySeedSub = new Dictionary<string, NpgsqlLogSequenceNumber>();
        while (await r.ReadAsync(ct)) bySeedSub[r.GetString(0)] = NpgsqlLogSequenceNumber.Parse(r.GetString(1));
        foreach (var j in plan.Joiners)
            if (bySeedSub.TryGetValue(j.SeedSubscription, out var lsn))
                _positions[j.Subscription] = lsn;
    }

    /// <summary>
    /// In the transaction that ends the copy: each joining subscription starts after what the copy holds, and may stream.
    /// </summary>
    public async Task PositionAsync(NpgsqlConnection target, NpgsqlTransaction tx, CancellationToken ct)
    {
        foreach (var j in plan.Joiners)
        {
            if (_positions.TryGetValue(j.Subscription, out var lsn))
            {
                await using var advance = new NpgsqlCommand("SELECT pg_replication_origin_advance($1, $2::text::pg_lsn)", target, tx);
                advance.Parameters.AddWithValue(Sql.OriginName(j.Subscription));
                advance.Parameters.AddWithValue(lsn.ToString());
                await advance.ExecuteNonQueryAsync(ct);
            }
            else
            {
                log.LogWarning("subscription {Subscription}: the seed {Seed} had applied nothing from {Node} at the copy's snapshot; {Joiner} starts where its slot was created",
                    plan.Name, plan.FromNode, j.FromNode, j.Subscription);
            }
            await using var cmd = new NpgsqlCommand(
                "UPDATE navette.subscription SET state = 'streaming', updated_at = now() WHERE name = $1 AND state = 'initializing'", target, tx);
            cmd.Parameters.AddWithValue(j.Subscription);
            await cmd.ExecuteNonQueryAsync(ct);
            log.LogInformation("subscription {Subscription}: {Joiner} starts from {Lsn}", plan.Name, j.Subscription,
                _positions.TryGetValue(j.Subscription, out var at) ? at.ToString() : "its slot");
        }
    }

    /// <summary>For a joining subscription: waits until the seed's copy to this node has positioned it.</summary>
    public static async Task WaitForCopyAsync(SubscriptionPlan plan, Func<CancellationToken, Task<string>> readState, ILogger log, CancellationToken ct)
    {
        var since = DateTime.UtcNow;
        var reported = DateTime.MinValue;
        while (await readState(ct) == WorkerState.Initializing)
        {
            if (DateTime.UtcNow - reported >= Report)
            {
                reported = DateTime.UtcNow;
                log.LogInformation("subscription {Subscription}: waiting for the initial copy of {Copy} to position it ({Seconds:F0} s so far)",
                    plan.Name, plan.Join!.CopySubscription, (DateTime.UtcNow - since).TotalSeconds);
            }
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
        }
    }
}
