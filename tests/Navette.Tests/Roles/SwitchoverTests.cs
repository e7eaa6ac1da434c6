using Microsoft.Extensions.Logging;
using Navette.Cli.Demo;
using Navette.Config;
using Navette.Roles;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Roles;

/// <summary>Planned changes of origin under a write load, checked row by row between the nodes afterwards.</summary>
[Collection(RolesCollection.Name)]
public sealed class SwitchoverTests(ITestOutputHelper output)
{
    internal static async Task<SwitchoverResult> SwitchoverAsync(ReplicationHarness h, ITestOutputHelper output, string to, double graceSeconds = 5)
    {
        var result = await new Switchover(h.ReloadConfig(), h.Logs.CreateLogger("switchover"), m => output.WriteLine("switchover: " + m))
            .RunAsync(to, TimeSpan.FromSeconds(graceSeconds), CancellationToken.None);
        foreach (var a in result.Actions) output.WriteLine("switchover: " + a);
        output.WriteLine($"switchover to {to}: writes unavailable for {result.Window.TotalSeconds:F2} s");
        h.ReloadConfig();
        return result;
    }

    internal static async Task<bool> ReadOnlyForClientsAsync(LocalCluster node)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SHOW default_transaction_read_only", conn);
        return (string?)await cmd.ExecuteScalarAsync() == "on";
    }

    [Fact]
    public async Task Switchover_and_switchback_under_load_lose_and_double_nothing_and_carry_sequences()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync(RoleWorkload.Schema);
        await h["b"].ExecuteAsync("TRUNCATE accounts");
        await h["c"].ExecuteAsync("TRUNCATE accounts");
        await h["a"].ExecuteAsync("INSERT INTO orders (ref, account, amount) SELECT 'seed' || g, g % 20, 1 FROM generate_series(1, 500) g; " +
                                  "UPDATE accounts a SET balance = s.n, ops = s.n FROM (SELECT account, count(*) AS n FROM orders GROUP BY account) s WHERE a.id = s.account");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.orders, public.accounts] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop] }
              a_to_c: { from: a, to: c, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon(followConfig: true);
        await h.WaitCaughtUpAsync();

        await using var load = new RoleWorkload(RoleWorkload.OriginOf(h), output);
        await load.WaitForCommitsAsync(100, TimeSpan.FromSeconds(60));

        load.ResetGap();
        var there = await SwitchoverAsync(h, output, "b");
        Assert.True(there.HandedOver);
        Assert.Equal(["b_to_a", "b_to_c"], h.Config.Subscriptions.Keys.Order());
        Assert.All(h.Config.Subscriptions.Values, s => Assert.Equal("b", s.From));
        Assert.True(await ReadOnlyForClientsAsync(h["a"]), "the old origin stays read-only for clients");
        Assert.False(await ReadOnlyForClientsAsync(h["b"]));
        Assert.True(there.Window < TimeSpan.FromSeconds(10), $"window {there.Window}");
        // The identity sequence followed: orders inserted on b get fresh ids, no duplicate key.
        await load.WaitForCommitsAsync(150, TimeSpan.FromSeconds(60));
        output.WriteLine($"client saw at most {load.LongestGap.TotalSeconds:F2} s without a commit");
        Assert.Empty(await h.ApplyAsync());

        load.ResetGap();
        var back = await SwitchoverAsync(h, output, "a");
        Assert.True(back.HandedOver);
        Assert.Equal(["a_to_b", "a_to_c"], h.Config.Subscriptions.Keys.Order());
        Assert.False(await ReadOnlyForClientsAsync(h["a"]), "switchback lifts the read-only setting of the new origin");
        Assert.True(await ReadOnlyForClientsAsync(h["b"]));
        await load.WaitForCommitsAsync(150, TimeSpan.FromSeconds(60));
        output.WriteLine($"client saw at most {load.LongestGap.TotalSeconds:F2} s without a commit");
        await load.StopAsync();
        await h.WaitCaughtUpAsync();

        await load.AssertIntactAsync(h["a"], [h["b"], h["c"]], 800);
        Assert.Empty(await h.ApplyAsync());
        Assert.Equal(["navette_a_to_b", "navette_a_to_c"], await StringsAsync(h["a"], "SELECT slot_name FROM pg_replication_slots ORDER BY 1"));
        Assert.Empty(await StringsAsync(h["b"], "SELECT slot_name FROM pg_replication_slots"));
        Assert.Empty(await StringsAsync(h["b"], "SELECT roname FROM pg_replication_origin WHERE roname <> 'navette_a_to_b'"));
    }

    [Fact]
    public async Task Switchover_in_a_cascade_re_roots_it_and_back()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync(RoleWorkload.Schema);
        await h["b"].ExecuteAsync("TRUNCATE accounts");
        await h["c"].ExecuteAsync("TRUNCATE accounts");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.orders, public.accounts] }
            subscriptions:
              a_b: { from: a, to: b, sets: [shop] }
              b_c: { from: b, to: c, sets: [shop], forward: true }
            """);
        await h.ApplyAsync();
        h.StartDaemon(followConfig: true);
        await h.WaitCaughtUpAsync();
        await using var load = new RoleWorkload(RoleWorkload.OriginOf(h), output, perSecond: 25);
        await load.WaitForCommitsAsync(50, TimeSpan.FromSeconds(60));

        // The end of the cascade becomes the origin: it feeds both others directly.
        await SwitchoverAsync(h, output, "c");
        Assert.Equal(["c_a", "c_b"], h.Config.Subscriptions.Keys.Order());
        await load.WaitForCommitsAsync(60, TimeSpan.FromSeconds(60));
        Assert.Empty(await h.ApplyAsync());

        // Back to a: b, which read from the old origin, reads from a; a feeds both.
        await SwitchoverAsync(h, output, "a");
        Assert.Equal(["a_b", "a_c"], h.Config.Subscriptions.Keys.Order());
        await load.WaitForCommitsAsync(60, TimeSpan.FromSeconds(60));
        await load.StopAsync();
        await h.WaitCaughtUpAsync();
        await load.AssertIntactAsync(h["a"], [h["b"], h["c"]], 150);
        Assert.Empty(await h.ApplyAsync());
    }

    [Fact]
    public async Task Switchover_is_refused_before_any_change_when_a_replica_is_not_streaming()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b");
        await h.OnAllAsync(RoleWorkload.Schema);
        await h["b"].ExecuteAsync("TRUNCATE accounts");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.orders, public.accounts] }
            subscriptions:
              a_b: { from: a, to: b, sets: [shop] }
            """);
        await h.ApplyAsync();
        var before = await File.ReadAllTextAsync(h.ConfigPath);
        var e = await Assert.ThrowsAsync<NavetteException>(() => SwitchoverAsync(h, output, "b"));
        Assert.Contains("subscription a_b is not streaming (slot navette_a_b on a has no reader): start navette run", e.Message);
        Assert.Equal(before, await File.ReadAllTextAsync(h.ConfigPath));
        Assert.False(await ReadOnlyForClientsAsync(h["a"]));
        Assert.Contains("already the origin", (await Assert.ThrowsAsync<NavetteException>(() => SwitchoverAsync(h, output, "a"))).Message);
    }

    internal static async Task<List<string>> StringsAsync(LocalCluster node, string sql)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        var list = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) list.Add(r.GetString(0));
        return list;
    }
}

/// <summary>Role change tests run one at a time: each keeps three clusters, a daemon and a write load busy.</summary>
[CollectionDefinition(Name)]
public sealed class RolesCollection
{
    public const string Name = "roles";
}
