using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Ddl;

/// <summary>Tables added to a running subscription's set: copied where the join arrives in the stream, then streamed.</summary>
public sealed class TableJoinTests(ITestOutputHelper output)
{
    private const int Rounds = 10;

    /// <summary>Inserts, updates and deletes on the table, on its own connection, until stopped; returns the statements run.</summary>
    private static async Task<int> HammerAsync(string connectionString, string table, int writer, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(CancellationToken.None);
        var random = new Random(writer * 7919 + table.GetHashCode());
        var n = 0;
        while (!ct.IsCancellationRequested)
        {
            var id = random.Next(1, 2000);
            var sql = (n % 4) switch
            {
                0 => $"INSERT INTO {table} VALUES ({writer * 1_000_000 + n}, 'w{writer}-{n}', 0)",
                1 => $"UPDATE {table} SET hits = hits + 1, label = label || '+' WHERE id = {id}",
                2 => $"DELETE FROM {table} WHERE id = {writer * 1_000_000 + n - 2}",
                _ => $"BEGIN; UPDATE {table} SET hits = hits + 10 WHERE id = {id + 1}; INSERT INTO {table} VALUES ({writer * 1_000_000 + n}, 'tx', 1); COMMIT",
            };
            await using (var cmd = new NpgsqlCommand(sql, conn)) await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            n++;
        }
        return n;
    }

    [Fact]
    public async Task A_table_added_to_a_set_while_four_writers_hammer_it_arrives_with_no_gap_and_no_duplicate()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        var create = string.Join("\n", Enumerable.Range(1, Rounds).Select(i => $"CREATE TABLE public.joined_{i} (id int PRIMARY KEY, label text, hits int);"));
        await h.OnAllAsync("CREATE TABLE public.base (id int PRIMARY KEY, v text);\n" + create);
        await h["origin"].ExecuteAsync("INSERT INTO base SELECT g, 'b' FROM generate_series(1, 100) g");
        string Config(int joined) => $$"""
            sets:
              shop: { tables: [public.base{{string.Concat(Enumerable.Range(1, joined).Select(i => $", public.joined_{i}"))}}] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """;
        h.WriteConfig(Config(0));
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        for (var round = 1; round <= Rounds; round++)
        {
            var table = $"joined_{round}";
            await h["origin"].ExecuteAsync($"INSERT INTO {table} SELECT g, 'row ' || g, 0 FROM generate_series(1, 2000) g");
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(1, 4).Select(w => Task.Run(() => HammerAsync(h["origin"].ConnectionString, table, w, stop.Token))).ToList();
            await Task.Delay(300);
            h.WriteConfig(Config(round));
            var actions = await h.ApplyAsync();
            Assert.Contains(actions, a => a.Contains("copied by each subscription reading it"));
            await Task.Delay(700);
            await stop.CancelAsync();
            var statements = (await Task.WhenAll(writers)).Sum();
            await h.WaitCaughtUpAsync();
            output.WriteLine($"round {round}: {statements} statements by 4 writers while {table} joined");
            Assert.True(statements > 40, $"round {round}: only {statements} statements ran");
            await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], table, minRows: 2000);
        }
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "base", minRows: 100);
        Assert.Equal(Rounds, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM navette.table_join WHERE subscription = 'to_replica'"));
    }

    [Fact]
    public async Task A_table_removed_from_a_set_stops_replicating_and_keeps_its_rows()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY);");
        await h["origin"].ExecuteAsync("INSERT INTO a SELECT generate_series(1, 50); INSERT INTO b SELECT generate_series(1, 50)");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.a, public.b] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        h.WriteConfig("""
            sets:
              shop: { tables: [public.a] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        await h["origin"].ExecuteAsync("INSERT INTO a VALUES (51); INSERT INTO b VALUES (51); DELETE FROM b WHERE id <= 10");
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "a", minRows: 51);
        Assert.Equal(50, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM b"));
        Assert.Equal(0, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM b WHERE id = 51"));
    }
}
