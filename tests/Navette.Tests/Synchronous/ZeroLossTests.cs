using System.Diagnostics;
using System.Globalization;
using Navette.Daemon;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using static Navette.Tests.Synchronous.SynchronousKit;

namespace Navette.Tests.Synchronous;

/// <summary>
/// Zero loss: each iteration commits one row on the origin, kills the origin's postmaster with SIGKILL as soon as the
/// COMMIT has returned, and looks for the row on the replica — before the origin is started again, so the replica
/// cannot have received it afterwards. NAVETTE_SYNC_KILLS sets the number of iterations (default 200).
/// </summary>
public sealed class ZeroLossTests(ITestOutputHelper output)
{
    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("NAVETTE_SYNC_KILLS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 200;

    [Fact]
    public async Task Every_commit_that_returned_is_on_the_replica_when_the_origin_is_killed_at_once()
    {
        var iterations = Iterations;
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync(Schema);
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              to_replica: { from: origin, to: replica, sets: [shop], initial_copy: false, synchronous: true }
            """);
        await h.ApplyAsync();
        // The worker reconnects within a tenth of a second of the origin's restart rather than after its usual 1 s.
        h.StartDaemon(retryBackoff: (TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100)));
        await WaitSynchronousAsync(h["origin"], "to_replica");

        var origin = h["origin"];
        var replica = h["replica"];
        var total = Stopwatch.StartNew();
        var commit = new List<double>();
        var kill = new List<double>();
        var start = new List<double>();
        var missing = new List<int>();
        for (var i = 1; i <= iterations; i++)
        {
            var step = Stopwatch.StartNew();
            // After a restart this commit also waits for the worker to reconnect and confirm it.
            await InsertAsync(origin, i).WaitAsync(TimeSpan.FromSeconds(60));
            commit.Add(step.Elapsed.TotalMilliseconds);
            step.Restart();
            await origin.KillPostmasterAsync();
            kill.Add(step.Elapsed.TotalMilliseconds);
            if (!await HasRowAsync(replica, i))
                missing.Add(i);
            step.Restart();
            await origin.StartAsync();
            start.Add(step.Elapsed.TotalMilliseconds);
            if (i % 50 == 0)
                output.WriteLine($"{i} iterations, {total.Elapsed.TotalSeconds:F1} s, {missing.Count} missing");
        }
        output.WriteLine($"{iterations} commit + SIGKILL + restart iterations in {total.Elapsed.TotalSeconds:F1} s "
                         + $"({total.Elapsed.TotalMilliseconds / iterations:F0} ms each): commit (incl. reconnect) median {Median(commit):F0} ms, "
                         + $"kill {Median(kill):F0} ms, start {Median(start):F0} ms");
        Assert.True(missing.Count == 0, $"{missing.Count} of {iterations} committed rows were not on the replica when the origin died: {string.Join(", ", missing.Take(20))}");
        Assert.Equal((long)iterations, await NodeQueries.CountAsync(replica, "public.items"));
        Assert.Equal((long)iterations, await NodeQueries.CountAsync(origin, "public.items"));
    }

    private static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count == 0 ? 0 : s[s.Count / 2];
    }
}
