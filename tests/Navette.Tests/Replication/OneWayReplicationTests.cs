using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Replication;

public sealed class OneWayReplicationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Inserts_updates_deletes_and_truncates_reach_the_replica()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("""
            CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[], updated timestamptz);
            CREATE TABLE public.log (id bigserial PRIMARY KEY, msg text);
            """);
        await h["origin"].ExecuteAsync("INSERT INTO items SELECT g, 'item ' || g, g * 1.5, ARRAY['a','b'], now() FROM generate_series(1, 500) g");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items, public.log] }
            subscriptions:
              origin_to_replica: { from: origin, to: replica, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();

        await h["origin"].ExecuteAsync("""
            INSERT INTO items SELECT g, 'item ' || g, g, NULL, NULL FROM generate_series(501, 1000) g;
            UPDATE items SET price = price * 2 WHERE id % 3 = 0;
            UPDATE items SET id = id + 10000 WHERE id BETWEEN 10 AND 20;
            DELETE FROM items WHERE id % 7 = 0;
            INSERT INTO log (msg) SELECT 'm' || g FROM generate_series(1, 100) g;
            TRUNCATE log;
            INSERT INTO log (msg) VALUES ('after truncate');
            """);
        await h.WaitCaughtUpAsync();

        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", minRows: 800);
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.log", minRows: 1);
    }
}
