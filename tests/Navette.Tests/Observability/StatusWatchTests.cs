using Navette.Cli;
using Navette.Status;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary><c>navette status --watch</c> and the copy progress bars of the status table.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class StatusWatchTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Watch_prints_a_new_reading_every_interval_without_escape_codes_when_redirected()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.items (id int PRIMARY KEY)");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              origin_to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["replica"], "origin_to_replica") == "streaming", TimeSpan.FromSeconds(60), "streaming");

        await using var watch = NavetteProcess.Start(output, "watch", "status", "--watch", "--interval", "0.5", "-c", h.ConfigPath);
        await Eventually.TrueAsync(() => Task.FromResult(watch.StdOut.Split("navette status, ").Length > 3), TimeSpan.FromSeconds(30), "three readings");
        watch.Interrupt();
        Assert.Equal(0, await watch.WaitForExitAsync(TimeSpan.FromSeconds(15)));
        Assert.DoesNotContain('\u001b', watch.StdOut);
        Assert.Contains("origin_to_replica  origin  replica  streaming", watch.StdOut);
    }

    [Fact]
    public void The_table_draws_a_progress_bar_per_table_of_a_running_copy()
    {
        var row = new SubscriptionStatus("a_to_b", "a", "b", "copying", null, 1000, 3, null, null, 0, 0, 0, 4096, true, 60, 1L << 30, null, [],
        [
            new CopyTableProgress("public.orders", 500, 40 << 20, 1000, true, false),
            new CopyTableProgress("public.customers", 20, 4096, 20, true, true),
            new CopyTableProgress("sales.\"Big\"", 0, 0, null, false, false),
        ]);
        var w = new StringWriter();
        StatusTable.Write(w, [row]);
        var text = w.ToString();
        output.WriteLine(text);
        Assert.Contains("a_to_b: initial copy, 1/3 tables done", text);
        Assert.Contains("public.orders     [############............]    50%  500 / ~1,000 rows, 40.0 MB", text);
        Assert.Contains("public.customers  [########################]   done  20 rows, 4.0 kB", text);
        Assert.Contains("sales.\"Big\"       [........................] queued  0 rows, 0 B", text);
    }
}
