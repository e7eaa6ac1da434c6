using System.Diagnostics;
using Navette.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>
/// The initial copy runs under the slot's exported snapshot while the origin keeps changing: the copy plus the
/// stream from the slot's consistent point must give exactly the origin's rows, with several tables copied in
/// parallel.
/// </summary>
public sealed class InitialCopyUnderLoadTests(ITestOutputHelper output)
{
    private const int BigRows = 100_000;

    private const string Schema = """
        CREATE TABLE public.big (id bigint PRIMARY KEY, v int NOT NULL, payload text);
        CREATE TABLE public.pairs (a int, b int, label text, PRIMARY KEY (a, b));
        CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz, doc jsonb, amounts numeric[]);
        CREATE TABLE public.parted (id int, region int, note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
        CREATE TABLE public.parted_0 PARTITION OF public.parted FOR VALUES IN (0);
        CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES IN (1);
        CREATE TABLE public.nokey (k int, v text);
        ALTER TABLE public.nokey REPLICA IDENTITY FULL;
        """;

    private static readonly string[] Tables = ["public.big", "public.pairs", "public.events", "public.parted", "public.nokey"];

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public async Task Copy_under_concurrent_writes_gives_identical_tables(int copyWorkers)
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        await h["origin"].ExecuteAsync($"""
            INSERT INTO big SELECT g, g % 1000, repeat(md5(g::text), 4) FROM generate_series(1, {BigRows}) g;
            INSERT INTO pairs SELECT g % 300, g / 300, 'p' || g FROM generate_series(1, 30000) g;
            INSERT INTO events SELECT g, now() - g * interval '1 minute', jsonb_build_object('n', g, 'tag', md5(g::text)), ARRAY[g * 0.5, g] FROM generate_series(1, 20000) g;
            INSERT INTO parted SELECT g, g % 2, 'n' || g FROM generate_series(1, 20000) g;
            INSERT INTO nokey SELECT g % 500, 'v' || g FROM generate_series(1, 5000) g;
            ANALYZE;
            """);

        await using var load = WriteLoad.Start("mixed", h["origin"].ConnectionString, MixedTransactionAsync, perSecond: 150, output);
        await load.WaitForCommitsAsync(50, TimeSpan.FromSeconds(30));

        h.WriteConfig($"""
            sets:
              all: {"{"} tables: [{string.Join(", ", Tables)}] {"}"}
            subscriptions:
              origin_to_replica: {"{"} from: origin, to: replica, sets: [all], copy_workers: {copyWorkers} {"}"}
            """);
        await h.ApplyAsync();
        h.StartDaemon();

        // Observe the copy while the writer runs: it must overlap writes, and end in streaming.
        var clock = Stopwatch.StartNew();
        long? atCopy = null, atStream = null;
        TimeSpan copySeen = default, streamSeen = default;
        while (atStream is null)
        {
            var state = await NodeQueries.StateAsync(h["replica"], "origin_to_replica");
            if (state == "copying" && atCopy is null) (atCopy, copySeen) = (load.Committed, clock.Elapsed);
            if (state == "streaming") (atStream, streamSeen) = (load.Committed, clock.Elapsed);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), $"copy did not finish in 120 s (state {state})");
            await Task.Delay(20);
        }
        output.WriteLine($"writer: {atCopy} commits when the copy was seen, {atStream} when streaming began ({clock.Elapsed.TotalSeconds:F1} s)");

        // Keep writing a while on top of the copy, then let the replica catch up.
        await load.WaitForCommitsAsync(200, TimeSpan.FromSeconds(60));
        var committed = await load.StopAsync();
        await h.WaitCaughtUpAsync();

        Assert.True(committed > 250, $"the writer committed only {committed} transactions");
        if (atCopy is not null && streamSeen - copySeen > TimeSpan.FromSeconds(0.5))
            Assert.True(atStream > atCopy, "the writer made no commit while the copy ran");
        foreach (var t in Tables)
            await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], t, minRows: t == "public.big" ? BigRows / 2 : 100);
        Assert.Equal(0, load.Failed);
    }

    /// <summary>Inserts, updates and deletes spread over every table; key changes included.</summary>
    private static async Task MixedTransactionAsync(NpgsqlConnection conn, Random random, CancellationToken ct)
    {
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx);
        for (var i = random.Next(1, 6); i > 0; i--)
        {
            var id = random.Next(1, BigRows + 20_000);
            switch (random.Next(10))
            {
                case 0:
                case 1:
                    Add(batch, "INSERT INTO big VALUES ($1, $2, md5($1::text)) ON CONFLICT (id) DO UPDATE SET v = big.v + 1", id, random.Next(1000));
                    break;
                case 2:
                    Add(batch, "UPDATE big SET v = v + 1, payload = md5(payload) WHERE id = $1", id);
                    break;
                case 3:
                    Add(batch, "DELETE FROM big WHERE id = $1", id);
                    break;
                case 4:
                    Add(batch, "UPDATE pairs SET label = label || '+' WHERE a = $1 AND b = $2", id % 300, id % 100);
                    break;
                case 5:
                    // A key change: the replica must find the row by its old key.
                    Add(batch, "UPDATE pairs SET b = b + 1000 WHERE a = $1 AND b = $2", id % 300, id % 100);
                    break;
                case 6:
                    Add(batch, "INSERT INTO events VALUES ($1 + 100000, now(), jsonb_build_object('r', $2), ARRAY[$2::numeric]) ON CONFLICT (id) DO NOTHING", id, random.Next());
                    break;
                case 7:
                    Add(batch, "DELETE FROM events WHERE id = $1", id % 20000);
                    break;
                case 8:
                    // Moves a row between partitions.
                    Add(batch, "UPDATE parted SET region = 1 - region, note = note || '>' WHERE id = $1", id % 20000);
                    break;
                default:
                    Add(batch, "UPDATE nokey SET v = v || '.' WHERE ctid = (SELECT ctid FROM nokey WHERE k = $1 LIMIT 1)", id % 500);
                    Add(batch, "INSERT INTO nokey VALUES ($1, 'dup')", id % 500);
                    Add(batch, "DELETE FROM nokey WHERE ctid = (SELECT ctid FROM nokey WHERE k = $1 ORDER BY v LIMIT 1)", (id + 7) % 500);
                    break;
            }
        }
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    private static void Add(NpgsqlBatch batch, string sql, params int[] values)
    {
        var c = new NpgsqlBatchCommand(sql);
        foreach (var v in values) c.Parameters.Add(new NpgsqlParameter { Value = v, NpgsqlDbType = NpgsqlDbType.Integer });
        batch.BatchCommands.Add(c);
    }
}
