using System.Collections.Concurrent;
using Navette.Cli.Demo;
using Npgsql;

namespace Navette.Tests.MultiMaster;

/// <summary>
/// Random inserts, updates and deletes of a small key range from several nodes at once, so that the same rows are
/// written concurrently everywhere. Every write that changed a row is recorded with its node, transaction and values;
/// once the writers stop, <see cref="ResolveCommitTimesAsync"/> reads each transaction's commit time so that the
/// expected survivor of each key under <c>latest</c> can be computed.
/// </summary>
internal sealed class MeshWorkload(IReadOnlyDictionary<string, LocalCluster> nodes, int seed, int keys = 100)
{
    public const string Table = "CREATE TABLE public.kv (id int PRIMARY KEY, val int NOT NULL, writer text NOT NULL, seq bigint NOT NULL);";

    /// <summary>One effective write: <see cref="Values"/> is null for a delete.</summary>
    public sealed record Write(string Node, string Xid, int Key, (int Val, string Writer, long Seq)? Values)
    {
        public DateTime CommitTime { get; set; }
    }

    private readonly ConcurrentBag<Write> _writes = new();
    private long _seq;

    public IReadOnlyCollection<Write> Writes => _writes;
    public int Transactions;
    public int Deadlocks;

    public async Task RunAsync(TimeSpan duration, CancellationToken ct = default)
    {
        var until = DateTime.UtcNow + duration;
        var index = 0;
        await Task.WhenAll(nodes.Select(n => WriterAsync(n.Key, n.Value, new Random(seed * 31 + index++), until, ct)));
    }

    private async Task WriterAsync(string name, LocalCluster node, Random random, DateTime until, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync(ct);
        while (DateTime.UtcNow < until && !ct.IsCancellationRequested)
        {
            var written = new List<Write>();
            try
            {
            await using (var tx = await conn.BeginTransactionAsync(ct))
            {
                var ops = random.Next(1, 4);
                string? xid = null;
                for (var i = 0; i < ops; i++)
                {
                    var key = random.Next(1, keys + 1);
                    var seq = Interlocked.Increment(ref _seq);
                    var val = random.Next(1_000_000);
                    var roll = random.Next(10);
                    string sql = roll switch
                    {
                        < 3 => "INSERT INTO kv VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING pg_current_xact_id()::text",
                        < 8 => "UPDATE kv SET val = $2, writer = $3, seq = $4 WHERE id = $1 RETURNING pg_current_xact_id()::text",
                        _ => "DELETE FROM kv WHERE id = $1 AND $2::int IS NOT NULL AND $3::text IS NOT NULL AND $4::bigint IS NOT NULL RETURNING pg_current_xact_id()::text",
                    };
                    await using var cmd = new NpgsqlCommand(sql, conn, tx);
                    cmd.Parameters.AddWithValue(key);
                    cmd.Parameters.AddWithValue(val);
                    cmd.Parameters.AddWithValue(name);
                    cmd.Parameters.AddWithValue(seq);
                    if (await cmd.ExecuteScalarAsync(ct) is not string x) continue; // nothing changed: no write
                    xid = x;
                    written.RemoveAll(w => w.Key == key); // the last write of a key in a transaction is its version
                    written.Add(new Write(name, x, key, roll < 8 ? (val, name, seq) : null));
                }
                await tx.CommitAsync(ct);
                if (xid is not null) foreach (var w in written) _writes.Add(w with { Xid = xid });
            }
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                // Two writers of the same rows (this one and an apply session) in opposite orders: one of them is
                // rolled back, as with any concurrent writers; nothing of it was written.
                Interlocked.Increment(ref Deadlocks);
                continue;
            }
            Interlocked.Increment(ref Transactions);
            await Task.Delay(random.Next(2, 12), ct);
        }
    }

    /// <summary>Reads the commit time of every recorded write's transaction on the node that ran it.</summary>
    public async Task ResolveCommitTimesAsync()
    {
        foreach (var group in _writes.GroupBy(w => w.Node))
        {
            await using var conn = new NpgsqlConnection(nodes[group.Key].ConnectionString);
            await conn.OpenAsync();
            var xids = group.Select(w => w.Xid).Distinct().ToArray();
            await using var cmd = new NpgsqlCommand("SELECT x, pg_xact_commit_timestamp(x::xid) FROM unnest($1::text[]) AS x", conn);
            cmd.Parameters.AddWithValue(xids);
            var times = new Dictionary<string, DateTime>();
            await using (var r = await cmd.ExecuteReaderAsync())
                while (await r.ReadAsync()) times[r.GetString(0)] = r.GetDateTime(1);
            foreach (var w in group) w.CommitTime = times[w.Xid];
        }
    }

    /// <summary>
    /// What <c>latest</c> must leave for each key: the write with the greatest commit time (equal times: the node whose
    /// name sorts first), absent when that write is a delete. Keys never written are absent.
    /// </summary>
    public Dictionary<int, (int Val, string Writer, long Seq)?> LatestSurvivors() =>
        _writes.GroupBy(w => w.Key).ToDictionary(g => g.Key, g => g
            .OrderByDescending(w => w.CommitTime).ThenBy(w => w.Node, StringComparer.Ordinal).First().Values);
}
