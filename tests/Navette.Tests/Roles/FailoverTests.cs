using Microsoft.Extensions.Logging;
using Navette.Roles;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Roles;

/// <summary>The origin killed (kill -9 of its postmaster) under a write load; failover, fencing and rejoin, checked on the data.</summary>
[Collection(RolesCollection.Name)]
public sealed class FailoverTests(ITestOutputHelper output)
{
    private const string Star = """
        sets:
          shop: { tables: [public.orders, public.accounts] }
        subscriptions:
          a_b: { from: a, to: b, sets: [shop] }
          a_c: { from: a, to: c, sets: [shop] }
        """;

    private static async Task<ReplicationHarness> StarAsync(ITestOutputHelper output)
    {
        var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync(RoleWorkload.Schema);
        await h["b"].ExecuteAsync("TRUNCATE accounts");
        await h["c"].ExecuteAsync("TRUNCATE accounts");
        h.WriteConfig(Star);
        await h.ApplyAsync();
        h.StartDaemon(followConfig: true);
        await h.WaitCaughtUpAsync();
        return h;
    }

    private async Task<FailoverResult> FailoverAsync(ReplicationHarness h, string to, bool force = false)
    {
        var result = await new Failover(h.ReloadConfig(), h.Logs.CreateLogger("failover"), m => output.WriteLine("failover: " + m)).RunAsync(to, force, CancellationToken.None);
        foreach (var a in result.Actions) output.WriteLine("failover: " + a);
        h.ReloadConfig();
        return result;
    }

    [Fact]
    public async Task Failover_after_kill_9_promotes_the_most_advanced_replica_and_levels_the_one_behind()
    {
        await using var h = await StarAsync(output);
        await using (var load = new RoleWorkload(RoleWorkload.OriginOf(h), output))
        {
            await load.WaitForCommitsAsync(80, TimeSpan.FromSeconds(60));
            // c stops receiving while b keeps up: c is behind b when the origin dies.
            await h.StopDaemonAsync();
            h.StartDaemon(only: ["a_b"]);
            await load.WaitForCommitsAsync(120, TimeSpan.FromSeconds(60));
            await Task.Delay(500);
            await h["a"].KillPostmasterAsync();
            await load.StopAsync();
        }
        await h.StopDaemonAsync();
        h.StartDaemon(followConfig: true);

        var before = await File.ReadAllTextAsync(h.ConfigPath);
        var refused = await Assert.ThrowsAsync<NavetteException>(() => FailoverAsync(h, "c"));
        output.WriteLine(refused.Message);
        Assert.Matches(@"^failover to c refused; nothing was changed: b applied a up to [0-9A-F]+/[0-9A-F]+, further than c \(", refused.Message);
        Assert.Equal(before, await File.ReadAllTextAsync(h.ConfigPath));

        var result = await FailoverAsync(h, "b");
        Assert.True(result.Positions.Single(p => p.Node == "b").Applied > result.Positions.Single(p => p.Node == "c").Applied);
        var leveled = Assert.Single(result.Leveled);
        Assert.Equal("b_c", leveled.Subscription);
        Assert.True(leveled.Tables.Sum(t => t.Written) > 0, "c was behind: the resync wrote the rows it missed");
        Assert.Equal(["b_c"], h.Config.Subscriptions.Keys);
        Assert.True(h.Config.Nodes["a"].Fenced);
        Assert.False(await SwitchoverTests.ReadOnlyForClientsAsync(h["b"]));
        // Level right away, before any new write.
        await TableCompare.AssertIdenticalAsync(h["b"], h["c"], "public.orders", 100);
        await TableCompare.AssertIdenticalAsync(h["b"], h["c"], "public.accounts", 20);

        await using (var load = new RoleWorkload(RoleWorkload.OriginOf(h), output, prefix: "x"))
        {
            await load.WaitForCommitsAsync(80, TimeSpan.FromSeconds(60));
            await load.StopAsync();
            await h.WaitCaughtUpAsync();
            await load.AssertIntactAsync(h["b"], [h["c"]], 150);
        }
        Assert.Empty(await h.ApplyAsync());
    }

    [Fact]
    public async Task Rejoin_reports_the_old_origins_lost_transactions_then_makes_it_an_identical_replica()
    {
        await using var h = await StarAsync(output);
        await using (var load = new RoleWorkload(RoleWorkload.OriginOf(h), output))
        {
            await load.WaitForCommitsAsync(60, TimeSpan.FromSeconds(60));
            await load.StopAsync();
        }
        await h.WaitCaughtUpAsync();
        // Nothing replicates any more: what a commits now never reaches b or c.
        await h.StopDaemonAsync();
        await h["a"].ExecuteAsync("BEGIN; INSERT INTO orders (ref, account, amount) VALUES ('lost1', 1, 10); UPDATE accounts SET balance = balance + 10, ops = ops + 1 WHERE id = 1; COMMIT;");
        await h["a"].ExecuteAsync("UPDATE orders SET note = 'lost edit' WHERE id = (SELECT min(id) FROM orders)");
        await h["a"].ExecuteAsync("""
            WITH gone AS (DELETE FROM orders WHERE id = (SELECT max(id) FROM orders WHERE ref <> 'lost1') RETURNING account, amount)
            UPDATE accounts a SET balance = a.balance - g.amount, ops = a.ops - 1 FROM gone g WHERE a.id = g.account
            """);
        await h["a"].KillPostmasterAsync();
        h.StartDaemon(followConfig: true);
        await FailoverAsync(h, "b");

        await using var load2 = new RoleWorkload(RoleWorkload.OriginOf(h), output, prefix: "x");
        await load2.WaitForCommitsAsync(40, TimeSpan.FromSeconds(60));

        // The old origin comes back: the daemon fences it within seconds.
        await h["a"].StartAsync();
        await Eventually.TrueAsync(() => SwitchoverTests.ReadOnlyForClientsAsync(h["a"]), TimeSpan.FromSeconds(30), "a read-only once back");
        var write = await Assert.ThrowsAsync<PostgresException>(() => h["a"].ExecuteAsync("INSERT INTO orders (ref, account, amount) VALUES ('split', 1, 1)"));
        Assert.Equal("25006", write.SqlState);
        Assert.Empty(await h.ApplyAsync());

        var reportPath = Path.Combine(TestClusters.RootDir, $"rejoin-{Guid.NewGuid():N}.sql");
        var result = await new Rejoin(h.ReloadConfig(), h.Logs.CreateLogger("rejoin"), m => output.WriteLine("rejoin: " + m)).RunAsync("a", reportPath, CancellationToken.None);
        foreach (var a in result.Actions) output.WriteLine("rejoin: " + a);
        h.ReloadConfig();
        var report = await File.ReadAllTextAsync(reportPath);
        output.WriteLine(report);

        // Exactly the three transactions, with every change.
        Assert.NotNull(result.Transactions);
        Assert.Equal(3, result.Transactions!.Count);
        Assert.Equal(3, CountOf(report, "\nBEGIN;\n"));
        Assert.Matches(@"INSERT INTO ""public"".""orders"" \(""id"", ""ref"", ""account"", ""amount"", ""note"", ""at""\) VALUES \('\d+', 'lost1', '1', '10', NULL, '", report);
        Assert.Matches(@"UPDATE ""public"".""orders"" SET .*""note"" = 'lost edit'.* WHERE ""id"" = '\d+';", report);
        Assert.Matches(@"DELETE FROM ""public"".""orders"" WHERE ""id"" = '\d+';", report);
        Assert.Equal(2, CountOf(report, @"UPDATE ""public"".""accounts"""));

        var logged = await SwitchoverTests.StringsAsync(h["a"],
            "SELECT conflict_type || ' ' || table_name || ' ' || local_origin || ' ' || remote_origin FROM navette.conflict_log WHERE policy = 'rejoin' ORDER BY id");
        Assert.Equal(
        [
            "divergent_insert \"public\".\"orders\" a b",
            "divergent_update \"public\".\"accounts\" a b",
            "divergent_update \"public\".\"orders\" a b",
            "divergent_delete \"public\".\"orders\" a b",
            "divergent_update \"public\".\"accounts\" a b",
        ], logged);
        Assert.Empty(await SwitchoverTests.StringsAsync(h["a"], "SELECT ref FROM orders WHERE ref = 'lost1'"));

        Assert.Equal(["b_a", "b_c"], h.Config.Subscriptions.Keys.Order());
        Assert.False(h.Config.Nodes["a"].Fenced);
        Assert.True(await SwitchoverTests.ReadOnlyForClientsAsync(h["a"]), "a rejoins as a read-only replica");
        Assert.Empty(await SwitchoverTests.StringsAsync(h["b"], "SELECT node FROM navette.fenced_node"));

        await load2.WaitForCommitsAsync(40, TimeSpan.FromSeconds(60));
        await load2.StopAsync();
        await h.WaitCaughtUpAsync();
        await load2.AssertIntactAsync(h["b"], [h["a"], h["c"]], 100);
        Assert.Empty(await h.ApplyAsync());
        Assert.Empty(await SwitchoverTests.StringsAsync(h["a"], "SELECT slot_name FROM pg_replication_slots"));
    }

    private static int CountOf(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
