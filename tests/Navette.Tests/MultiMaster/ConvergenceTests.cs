using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.MultiMaster;

/// <summary>
/// Three nodes writing the same small set of keys at once — inserts, updates and deletes — for 20 s; once writers stop
/// and navette wait returns, every node must hold the same rows. For latest, each key must hold the write with the
/// latest commit (from the log the workload keeps). NAVETTE_MESH_SEEDS=n runs more seeds.
/// </summary>
public sealed class ConvergenceTests(ITestOutputHelper output)
{
    private static readonly TimeSpan WriteFor = TimeSpan.FromSeconds(20);

    public static IEnumerable<object[]> Cases()
    {
        var seeds = int.TryParse(Environment.GetEnvironmentVariable("NAVETTE_MESH_SEEDS"), out var n) && n > 0 ? n : 2;
        foreach (var policy in new[] { "latest", "priority", "random" })
            for (var seed = 1; seed <= (policy == "latest" ? seeds : Math.Max(1, seeds - 1)); seed++)
                yield return [policy, seed];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Three_writers_on_overlapping_keys_converge(string policy, int seed)
    {
        output.WriteLine($"policy {policy}, seed {seed}");
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "nice");
        await h.OnAllAsync(MeshWorkload.Table);
        var extra = policy switch
        {
            "priority" => "    priority: [lyon, paris, nice]\n    conflict_window: 2s\n",
            "random" => "    conflict_window: 2s\n",
            _ => "",
        };
        h.WriteConfig($"""
            sets:
              shop:
                tables: [public.kv]
                mesh: [paris, lyon, nice]
                conflicts: {policy}

            """ + extra);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        var workload = new MeshWorkload(h.Nodes, seed);
        await workload.RunAsync(WriteFor);
        output.WriteLine($"{workload.Transactions} transactions, {workload.Writes.Count} effective writes");
        await h.WaitCaughtUpAsync(180);

        var conflicts = 0L;
        foreach (var node in h.Nodes.Values)
            conflicts += await node.ScalarAsync<long>("SELECT count(*) FROM navette.conflict_log");
        output.WriteLine($"{conflicts} conflicts logged");
        Assert.True(conflicts > 0, "the workload should have produced conflicts");

        var paris = await TableCompare.RowsAsync(h["paris"], "public.kv");
        foreach (var other in new[] { "lyon", "nice" })
        {
            var rows = await TableCompare.RowsAsync(h[other], "public.kv");
            if (!paris.SequenceEqual(rows))
                await ExplainAsync(h, workload, paris.Except(rows).Concat(rows.Except(paris)).Select(r => int.Parse(r.TrimStart('(').Split(',')[0])).Distinct().Take(3));
            Assert.True(paris.SequenceEqual(rows),
                $"{other} differs from paris: only on paris [{string.Join(" ", paris.Except(rows).Take(8))}], only on {other} [{string.Join(" ", rows.Except(paris).Take(8))}]");
        }

        if (policy != "latest") return;
        await workload.ResolveCommitTimesAsync();
        var expected = workload.LatestSurvivors();
        var actual = new Dictionary<int, (int, string, long)>();
        await using (var conn = new Npgsql.NpgsqlConnection(h["paris"].ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("SELECT id, val, writer, seq FROM kv", conn);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) actual[r.GetInt32(0)] = (r.GetInt32(1), r.GetString(2), r.GetInt64(3));
        }
        var wrong = expected.Where(e => e.Value is { } v ? !actual.TryGetValue(e.Key, out var a) || a != v : actual.ContainsKey(e.Key))
            .Select(e => $"key {e.Key}: expected {(e.Value?.ToString() ?? "deleted")}, found {(actual.TryGetValue(e.Key, out var a) ? a.ToString() : "no row")}")
            .ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} key(s) do not hold their latest write: {string.Join("; ", wrong.Take(10))}");
        Assert.Empty(actual.Keys.Except(expected.Keys));
    }

    /// <summary>The history of the keys that differ: every write the workload made and every conflict each node logged.</summary>
    private async Task ExplainAsync(ReplicationHarness h, MeshWorkload workload, IEnumerable<int> keys)
    {
        await workload.ResolveCommitTimesAsync();
        foreach (var key in keys)
        {
            output.WriteLine($"--- key {key}");
            foreach (var w in workload.Writes.Where(w => w.Key == key).OrderBy(w => w.CommitTime))
                output.WriteLine($"write {w.CommitTime:HH:mm:ss.ffffff} {w.Node} xid {w.Xid}: {(w.Values?.ToString() ?? "delete")}");
            foreach (var (name, node) in h.Nodes)
            {
                await using var conn = new Npgsql.NpgsqlConnection(node.ConnectionString);
                await conn.OpenAsync();
                await using var cmd = new Npgsql.NpgsqlCommand(
                    $"SELECT logged_at, conflict_type, local_origin, local_commit_time, remote_origin, remote_commit_time, outcome, local_tuple::text, remote_tuple::text FROM navette.conflict_log WHERE (key->>'id')::int = {key} ORDER BY id", conn);
                await using var r = await cmd.ExecuteReaderAsync();
                while (await r.ReadAsync())
                    output.WriteLine($"{name}: {r.GetDateTime(0):HH:mm:ss.ffffff} {r.GetString(1)} local {(r.IsDBNull(2) ? "-" : r.GetString(2))}@{(r.IsDBNull(3) ? "-" : r.GetDateTime(3).ToString("HH:mm:ss.ffffff"))} " +
                                     $"remote {r.GetString(4)}@{r.GetDateTime(5):HH:mm:ss.ffffff} -> {r.GetString(6)} local {(r.IsDBNull(7) ? "-" : r.GetString(7))} remote {r.GetString(8)}");
            }
        }
    }
}
