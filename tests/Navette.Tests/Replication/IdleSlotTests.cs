using Navette.Status;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>
/// A subscription whose tables are idle, on an origin cluster busy with another database: no transaction reaches
/// the worker, so only confirming the keepalive positions lets the slot release WAL.
/// </summary>
public sealed class IdleSlotTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";
    private const long GeneratedWal = 100L << 20;
    private const long RetainedBound = 16L << 20;

    [Fact]
    public async Task Slot_of_an_idle_database_follows_the_wal_of_a_busy_cluster()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.quiet (id int PRIMARY KEY, v text);");
        await h["origin"].ExecuteAsync("INSERT INTO quiet SELECT g, 'v' || g FROM generate_series(1, 100) g");
        await h["origin"].ExecuteAsync("CREATE DATABASE busy");
        h.WriteConfig($$"""
            sets:
              calm: { tables: [public.quiet] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [calm] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        var rowsBefore = (await NodeQueries.SubscriptionAsync(h["replica"], Sub))!.RowsApplied;

        // Heavy writes in the other database: about 100 MB of WAL, in many transactions.
        await using (var busy = new NpgsqlConnection(h["origin"].ConnectionStringFor("busy")))
        {
            await busy.OpenAsync();
            await Exec(busy, "CREATE TABLE filler (id bigint, pad text)");
            var start = await Lsn(busy);
            for (var i = 0; (long)(await Lsn(busy) - start) < GeneratedWal; i++)
            {
                await Exec(busy, $"INSERT INTO filler SELECT g, md5(g::text) || repeat('x', 968) FROM generate_series({i * 5000}, {i * 5000 + 4999}) g");
                if (i % 4 == 3) await Exec(busy, "DELETE FROM filler WHERE id % 2 = 0");
            }
            var end = await Lsn(busy);
            output.WriteLine($"generated {(end - start) / 1048576.0:F0} MB of WAL in database busy");

            // Checkpoints log the running transactions the slot's restart point moves on; a trickle of writes
            // keeps the walsender sending keepalives.
            var slot = await Eventually.ValueAsync(async () =>
                {
                    await Exec(busy, "CHECKPOINT");
                    await Exec(busy, "INSERT INTO filler VALUES (-1, 'tick')");
                    var s = (await NodeQueries.SlotAsync(h["origin"], Sub))!;
                    output.WriteLine($"slot: unconfirmed {s.UnconfirmedBytes / 1048576.0:F1} MB, retained {s.RetainedBytes / 1048576.0:F1} MB (confirmed {s.ConfirmedFlush}, restart {s.RestartLsn})");
                    return s;
                },
                s => s.RetainedBytes is >= 0 and < RetainedBound && (ulong)NpgsqlTypes.NpgsqlLogSequenceNumber.Parse(s.ConfirmedFlush) >= end,
                TimeSpan.FromSeconds(60), "the slot to release the busy database's WAL", pollMs: 1000);
            Assert.True(slot.Active);
        }

        var status = (await new StatusReader(h.Config).ReadAsync(CancellationToken.None)).Single();
        output.WriteLine($"status: {status}");
        Assert.Equal("streaming", status.State);
        Assert.True(status.RetainedWalBytes < RetainedBound + (8L << 20), $"status shows {status.RetainedWalBytes} bytes retained");
        Assert.True(status.LagSeconds is >= 0 and < 10, $"status shows a lag of {status.LagSeconds} s for a caught-up subscription");
        Assert.Equal(rowsBefore, (await NodeQueries.SubscriptionAsync(h["replica"], Sub))!.RowsApplied);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.quiet", 100);
    }

    private static async Task Exec(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 120 };
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<ulong> Lsn(NpgsqlConnection conn)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_current_wal_lsn()::text", conn);
        return (ulong)NpgsqlTypes.NpgsqlLogSequenceNumber.Parse((string)(await cmd.ExecuteScalarAsync())!);
    }
}
