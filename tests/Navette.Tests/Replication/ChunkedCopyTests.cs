using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>A table larger than one copy part is copied by several connections in page ranges, while it is written.</summary>
public sealed class ChunkedCopyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_large_table_copied_in_page_ranges_under_writes_arrives_whole()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.big (id bigint PRIMARY KEY, grp int NOT NULL, pad text NOT NULL)");
        // About 90 MB: two or more page ranges.
        await h["origin"].ExecuteAsync("INSERT INTO public.big SELECT g, g % 97, repeat(md5(g::text), 3) FROM generate_series(1, 600000) g; ANALYZE public.big");
        var size = await h["origin"].ScalarAsync<long>("SELECT pg_relation_size('public.big')");
        Assert.True(size > Navette.Sync.CopyChunk.TargetBytes, $"the table ({size} bytes) must span several copy parts");
        h.WriteConfig("""
            sets:
              s: { tables: [public.big] }
            subscriptions:
              origin_to_replica: { from: origin, to: replica, sets: [s], copy_workers: 3 }
            """);
        await h.ApplyAsync();

        // Updates move rows to new pages (HOT or not), deletes leave holes, inserts land at the end: every range boundary is crossed.
        await using var load = WriteLoad.Start("big-writer", h["origin"].ConnectionString, async (conn, random, ct) =>
        {
            await using var batch = new NpgsqlBatch(conn)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("UPDATE public.big SET pad = md5(random()::text) || pad WHERE id = $1") { Parameters = { new() { Value = (long)random.Next(1, 600_000) } } },
                    new NpgsqlBatchCommand("DELETE FROM public.big WHERE id = $1") { Parameters = { new() { Value = (long)random.Next(1, 600_000) } } },
                    new NpgsqlBatchCommand("INSERT INTO public.big SELECT max(id) + 1, 0, 'new' FROM public.big"),
                },
            };
            await batch.ExecuteNonQueryAsync(ct);
        }, perSecond: 200, output);
        h.StartDaemon();
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["replica"], "origin_to_replica") == "streaming",
            TimeSpan.FromMinutes(3), "initial copy finished");
        await load.WaitForCommitsAsync(50, TimeSpan.FromSeconds(30));
        await load.DisposeAsync();
        await h.WaitCaughtUpAsync();

        var origin = await DemoVerifier.DigestAsync(h["origin"].ConnectionString, "public.big", CancellationToken.None);
        var replica = await DemoVerifier.DigestAsync(h["replica"].ConnectionString, "public.big", CancellationToken.None);
        Assert.True(origin.Rows >= 600_000, $"origin has {origin.Rows} rows");
        Assert.Equal(origin, replica);
    }
}
