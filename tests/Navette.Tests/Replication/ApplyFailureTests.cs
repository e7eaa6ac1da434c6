using Navette.Status;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

/// <summary>
/// A change the target refuses stops its subscription, and only it, exactly before the refused transaction;
/// once the operator fixes the target the subscription resumes from there with nothing lost.
/// </summary>
public sealed class ApplyFailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Refused_row_stops_its_subscription_at_that_transaction_until_fixed()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "shop", "crm", "report");
        await h["shop"].ExecuteAsync("CREATE TABLE public.orders (id int PRIMARY KEY, amount int NOT NULL, note text);");
        await h["crm"].ExecuteAsync("CREATE TABLE public.contacts (id int PRIMARY KEY, name text);");
        await h["report"].ExecuteAsync("""
            CREATE TABLE public.orders (id int PRIMARY KEY, amount int NOT NULL, note text);
            ALTER TABLE public.orders ADD CONSTRAINT report_small_orders CHECK (amount < 1000);
            CREATE TABLE public.contacts (id int PRIMARY KEY, name text);
            """);
        await h["shop"].ExecuteAsync("INSERT INTO orders SELECT g, g, 'seed' FROM generate_series(1, 100) g");
        h.WriteConfig("""
            sets:
              orders: { tables: [public.orders] }
              contacts: { tables: [public.contacts] }
            subscriptions:
              shop_to_report: { from: shop, to: report, sets: [orders] }
              crm_to_report: { from: crm, to: report, sets: [contacts] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["report"], "shop_to_report") == "streaming",
            TimeSpan.FromSeconds(60), "shop_to_report streaming");

        // Good transactions, then the one the report refuses, then more good ones: each its own transaction, sent
        // quickly so that they share the applier's batches.
        for (var i = 101; i <= 150; i++)
            await h["shop"].ExecuteAsync($"INSERT INTO orders VALUES ({i}, {i}, 'before')");
        await h["shop"].ExecuteAsync("INSERT INTO orders VALUES (151, 5000, 'too big for the report')");
        for (var i = 152; i <= 200; i++)
            await h["shop"].ExecuteAsync($"INSERT INTO orders VALUES ({i}, {i}, 'after')");
        await h["shop"].ExecuteAsync("UPDATE orders SET note = 'updated after' WHERE id <= 10");

        var failed = await Eventually.ValueAsync(() => NodeQueries.SubscriptionAsync(h["report"], "shop_to_report"),
            s => s?.State == "failed" && s.Error?.Contains("id=151") == true, TimeSpan.FromSeconds(60), "shop_to_report to fail on order 151");
        output.WriteLine("error: " + failed!.Error);
        Assert.Contains("orders", failed.Error);
        Assert.Contains("id=151", failed.Error);
        Assert.Contains("report_small_orders", failed.Error);

        // Stopped exactly before the refused transaction: everything before it applied, nothing after.
        await Eventually.TrueAsync(async () => await h["report"].ScalarAsync<long>("SELECT max(id) FROM orders") == 150,
            TimeSpan.FromSeconds(30), "the transactions before the refused one to be applied");
        Assert.Equal(150, await NodeQueries.CountAsync(h["report"], "orders"));
        Assert.Equal(0, await h["report"].ScalarAsync<long>("SELECT count(*) FROM orders WHERE note <> 'seed' AND note <> 'before'"));

        // The other subscription into the same node keeps going meanwhile.
        await h["crm"].ExecuteAsync("INSERT INTO contacts SELECT g, 'c' || g FROM generate_series(1, 300) g");
        await Eventually.TrueAsync(async () => await NodeQueries.CountAsync(h["report"], "contacts") == 300,
            TimeSpan.FromSeconds(30), "contacts to reach the report while orders are stuck");
        await TableCompare.AssertIdenticalAsync(h["crm"], h["report"], "public.contacts", 300);

        var status = (await new StatusReader(h.Config).ReadAsync(CancellationToken.None)).ToDictionary(s => s.Name);
        Assert.Equal("failed", status["shop_to_report"].State);
        Assert.Contains("id=151", status["shop_to_report"].Error);
        Assert.Equal("streaming", status["crm_to_report"].State);
        Assert.Null(status["crm_to_report"].Error);
        // Still failed a few retries later (it does not blink back to streaming while the row is refused).
        await Task.Delay(3000);
        Assert.Equal("failed", await NodeQueries.StateAsync(h["report"], "shop_to_report"));

        // The operator fixes the report; the subscription resumes where it stopped.
        await h["report"].ExecuteAsync("ALTER TABLE orders DROP CONSTRAINT report_small_orders");
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(h["shop"], h["report"], "public.orders", 200);
        await TableCompare.AssertIdenticalAsync(h["crm"], h["report"], "public.contacts", 300);
        var resumed = await NodeQueries.SubscriptionAsync(h["report"], "shop_to_report");
        Assert.Equal("streaming", resumed!.State);
        Assert.Null(resumed.Error);
    }
}
