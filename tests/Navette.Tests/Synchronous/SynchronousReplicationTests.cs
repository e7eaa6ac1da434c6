using System.Diagnostics;
using Navette.Daemon;
using Navette.Status;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static Navette.Tests.Synchronous.SynchronousKit;

namespace Navette.Tests.Synchronous;

/// <summary>
/// synchronous: true end to end: the origin's COMMIT returns only once the replica has the row, waits while the
/// replica's worker is away, quorums, degrade_after, and async subscriptions beside synchronous ones.
/// </summary>
public sealed class SynchronousReplicationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_commit_waits_while_the_worker_is_stopped_and_returns_once_it_has_applied_the_row()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        await h["origin"].ExecuteAsync("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (some_physical_standby)'; SELECT pg_reload_conf()");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop], initial_copy: false, synchronous: true }
            """);
        var actions = await h.ApplyAsync();
        Assert.Contains(actions, a => a.Contains("synchronous_standby_names set to 'FIRST 2 (some_physical_standby, navette_to_replica)'", StringComparison.Ordinal));
        Assert.Equal("FIRST 2 (some_physical_standby, navette_to_replica)", await StandbyNamesAsync(h["origin"]));
        // A foreign standby that never connects would block every commit: for this test it goes, navette's name stays.
        await h["origin"].ExecuteAsync("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (navette_to_replica)'; SELECT pg_reload_conf()");
        await Eventually.TrueAsync(async () => await StandbyNamesAsync(h["origin"]) == "ANY 1 (navette_to_replica)", TimeSpan.FromSeconds(10), "reload");
        Assert.Empty(await h.ApplyAsync()); // idempotent

        h.StartDaemon();
        await WaitSynchronousAsync(h["origin"], "to_replica");

        // Streaming: every commit that returns is on the replica at that moment, without waiting for it.
        for (var i = 1; i <= 20; i++)
        {
            await InsertAsync(h["origin"], i);
            Assert.True(await HasRowAsync(h["replica"], i), $"row {i} was not on the replica when the origin's commit returned");
        }

        await h.StopDaemonAsync();
        var clock = Stopwatch.StartNew();
        var commit = InsertAsync(h["origin"], 100);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(commit.IsCompleted, "the commit returned although the replica's worker was stopped");
        Assert.Equal(1, await WaitingCommitsAsync(h["origin"]));
        Assert.False(await HasRowAsync(h["replica"], 100));
        // Its commit record is written, but PostgreSQL shows the row to other sessions only once the wait is over.
        Assert.Equal(0L, await h["origin"].ScalarAsync<long>("SELECT count(*) FROM items WHERE id = 100"));

        var status = (await new StatusReader(h.Config).ReadAsync(CancellationToken.None)).Single();
        output.WriteLine($"status while stopped: {System.Text.Json.JsonSerializer.Serialize(status.Synchronous, StatusJson.Options)}");
        Assert.NotNull(status.Synchronous);
        Assert.True(status.Synchronous!.Listed);
        Assert.Equal(1, status.Synchronous.OriginCommitsWaiting);
        Assert.True(status.Synchronous.OriginLongestWaitSeconds >= 2.5, $"longest wait {status.Synchronous.OriginLongestWaitSeconds}");

        var resumed = clock.Elapsed;
        h.StartDaemon();
        await commit.WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"commit blocked {clock.Elapsed.TotalSeconds:F2} s, returned {(clock.Elapsed - resumed).TotalSeconds:F2} s after the worker was started again");
        Assert.True(await HasRowAsync(h["replica"], 100), "the commit returned before the row was on the replica");
        Assert.Equal(0, await WaitingCommitsAsync(h["origin"]));
        Assert.Equal(21L, await NodeQueries.CountAsync(h["replica"], "public.items"));
    }

    [Fact]
    public async Task Quorum_one_of_two_does_not_wait_for_a_replica_that_is_down_and_an_async_subscription_runs_beside()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "r1", "r2", "r3");
        await h.OnAllAsync(Schema);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items], synchronous_quorum: 1 }
            subscriptions:
              to_r1: { from: origin, to: r1, sets: [shop], initial_copy: false, synchronous: true }
              to_r2: { from: origin, to: r2, sets: [shop], initial_copy: false, synchronous: true }
              to_r3: { from: origin, to: r3, sets: [shop], initial_copy: false }
            """);
        await h.ApplyAsync();
        Assert.Equal("ANY 1 (navette_to_r1, navette_to_r2)", await StandbyNamesAsync(h["origin"]));
        h.StartDaemon(retryBackoff: (TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500)));
        await Eventually.TrueAsync(async () => await h["origin"].ScalarAsync<long>(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name IN ('navette_to_r1', 'navette_to_r2') AND sync_state = 'quorum'") == 2,
            TimeSpan.FromSeconds(60), "both walsenders in the quorum");
        Assert.Equal("async", await h["origin"].ScalarAsync<string>("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'navette_to_r3'"));

        await InsertAsync(h["origin"], 1);
        Assert.True(await HasRowAsync(h["r1"], 1) || await HasRowAsync(h["r2"], 1), "row 1 on neither synchronous replica when its commit returned");

        // r2 down: one of two is enough.
        await h["r2"].StopAsync();
        var clock = Stopwatch.StartNew();
        for (var i = 2; i <= 11; i++)
        {
            await InsertAsync(h["origin"], i).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(await HasRowAsync(h["r1"], i), $"row {i} not on r1 when its commit returned with r2 down");
        }
        output.WriteLine($"10 commits with r2 down: {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));

        var status = await new StatusReader(h.Config).ReadAsync(CancellationToken.None);
        foreach (var s in status) output.WriteLine($"{s.Name}: {System.Text.Json.JsonSerializer.Serialize(s.Synchronous, StatusJson.Options)}");
        Assert.Equal("quorum", status.Single(s => s.Name == "to_r1").Synchronous!.SyncState);
        Assert.Null(status.Single(s => s.Name == "to_r2").Synchronous!.SyncState); // no walsender
        Assert.Null(status.Single(s => s.Name == "to_r3").Synchronous);

        // Both down: nothing confirms, the commit waits; r1 back: it returns.
        await h["r1"].StopAsync();
        var waiting = InsertAsync(h["origin"], 50);
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(waiting.IsCompleted, "the commit returned with both synchronous replicas down");
        await h["r1"].StartAsync();
        await waiting.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(await HasRowAsync(h["r1"], 50));

        // r2 back: it catches up; the async replica has everything too.
        await h["r2"].StartAsync();
        await h.WaitCaughtUpAsync();
        foreach (var node in new[] { "r1", "r2", "r3" })
            await TableCompare.AssertIdenticalAsync(h["origin"], h[node], "public.items", minRows: 12);
    }

    [Fact]
    public async Task Degrade_after_lifts_the_wait_for_a_replica_that_is_away_and_lists_it_again_once_caught_up()
    {
        var logs = new CapturedLogs();
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        h.Logs.AddProvider(logs);
        await h.OnAllAsync(Schema);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop], initial_copy: false, synchronous: true, degrade_after: 3s }
            """);
        await h.ApplyAsync();
        h.StartDaemon(retryBackoff: (TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500)));
        await WaitSynchronousAsync(h["origin"], "to_replica");
        await InsertAsync(h["origin"], 1);
        Assert.True(await HasRowAsync(h["replica"], 1));
        // The guard counts "away" from its own start until it has seen the walsender streaming: let it look a few times.
        await Task.Delay(TimeSpan.FromSeconds(2));

        // The worker loses its target (and the origin its walsender) as soon as the replica starts shutting down.
        var down = DateTime.UtcNow;
        await h["replica"].StopAsync();
        var clock = Stopwatch.StartNew();
        await InsertAsync(h["origin"], 2).WaitAsync(TimeSpan.FromSeconds(30));
        var blocked = clock.Elapsed;
        var returned = DateTime.UtcNow;
        // The commit returns as soon as the origin reloads its configuration, a moment before the guard logs.
        await Eventually.TrueAsync(() => Task.FromResult(logs.First("DEGRADED") is not null), TimeSpan.FromSeconds(5), "the DEGRADED log line", pollMs: 10);
        var degraded = logs.First("DEGRADED")!;
        var degradedAfter = (degraded.Value.At - down).TotalSeconds;
        output.WriteLine($"replica stopping at {down:HH:mm:ss.fff}; DEGRADED logged at {degraded.Value.At:HH:mm:ss.fff} (+{degradedAfter:F2} s); "
                         + $"the commit (started once the replica was down) waited {blocked.TotalSeconds:F2} s and returned at {returned:HH:mm:ss.fff}");
        output.WriteLine("log: " + degraded.Value.Message);
        // degrade_after is 3 s from the walsender's disappearance: that long, plus at most a guard interval and the reload.
        // (Upper bounds leave room for a machine shared with other test runs.)
        Assert.InRange(degradedAfter, 3.0, 8);
        Assert.InRange(blocked.TotalSeconds, 1.0, 8);
        // The commit was released by the degrade, not by anything else.
        Assert.InRange((returned - degraded.Value.At).TotalSeconds, -1, 1);
        Assert.Equal("", await StandbyNamesAsync(h["origin"]));
        await InsertAsync(h["origin"], 3).WaitAsync(TimeSpan.FromSeconds(10)); // degraded: no wait at all

        await h["replica"].StartAsync();
        var up = DateTime.UtcNow;
        await Eventually.TrueAsync(async () => await StandbyNamesAsync(h["origin"]) == "ANY 1 (navette_to_replica)", TimeSpan.FromSeconds(60), "the name to be listed again");
        await Eventually.TrueAsync(() => Task.FromResult(logs.First("RESTORED") is not null), TimeSpan.FromSeconds(5), "the RESTORED log line", pollMs: 10);
        var restored = logs.First("RESTORED")!;
        output.WriteLine($"replica started at {up:HH:mm:ss.fff}; RESTORED logged at {restored.Value.At:HH:mm:ss.fff} (+{(restored.Value.At - up).TotalSeconds:F2} s): {restored.Value.Message}");
        // Caught up before it was listed again: what was committed while degraded is there.
        Assert.True(await HasRowAsync(h["replica"], 2));
        Assert.True(await HasRowAsync(h["replica"], 3));
        await WaitSynchronousAsync(h["origin"], "to_replica");
        await InsertAsync(h["origin"], 4);
        Assert.True(await HasRowAsync(h["replica"], 4), "synchronous again: the row must be there when the commit returns");
    }
}
