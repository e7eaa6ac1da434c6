using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>navette apply converges: a second run changes nothing, and edits of the file are carried out exactly.</summary>
public sealed class IdempotencyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Applying_twice_changes_nothing_the_second_time_even_after_the_daemon_ran()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync("""
            CREATE TABLE public.items (id int PRIMARY KEY, name text);
            CREATE TABLE public.events (id bigint, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
            CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            """);
        await h["a"].ExecuteAsync("INSERT INTO public.items SELECT g, 'n' || g FROM generate_series(1, 20) g; INSERT INTO public.events VALUES (1, '2024-05-01')");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
              history: { tables: [public.events] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop, history] }
              a_to_c: { from: a, to: c, sets: [shop], initial_copy: false }
            """);

        var first = await h.ApplyAsync();
        Assert.Equal(
        [
            $"node a: navette catalog installed/upgraded to version {Navette.Catalog.CatalogMigrations.LatestVersion}",
            $"node b: navette catalog installed/upgraded to version {Navette.Catalog.CatalogMigrations.LatestVersion}",
            $"node c: navette catalog installed/upgraded to version {Navette.Catalog.CatalogMigrations.LatestVersion}",
            "node a: publication navette_shop created with 1 table(s)",
            "node a: publication navette_history created with 1 table(s)",
            "node b: replication origin navette_a_to_b created",
            "node b: subscription a_to_b registered (initial copy on first run)",
            "node c: replication origin navette_a_to_c created",
            "node c: subscription a_to_c registered (no initial copy)",
            "node a: slot navette_a_to_c created (streaming starts from now, no initial copy)",
        ], first);
        Assert.Empty(await h.ApplyAsync());

        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["a"], h["b"], "public.events");
        Assert.Empty(await h.ApplyAsync()); // with the slot the daemon created and the subscription streaming
        await h.StopDaemonAsync();
        await ApplyKit.WaitSlotInactiveAsync(h["a"], "navette_a_to_b");
        Assert.Empty(await h.ApplyAsync());
    }

    [Fact]
    public async Task Removing_a_subscription_drops_its_slot_origin_and_registration_but_not_while_it_streams()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b", "c");
        await h.OnAllAsync("CREATE TABLE public.items (id int PRIMARY KEY, name text)");
        await h["a"].ExecuteAsync("INSERT INTO public.items SELECT g, 'n' || g FROM generate_series(1, 20) g");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop] }
              a_to_c: { from: a, to: c, sets: [shop] }
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        await ApplyKit.WaitSlotActiveAsync(h["a"], "navette_a_to_c");

        const string withoutAToC = """
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop] }
            """;
        h.WriteConfig(withoutAToC);
        var streaming = ApplyKit.Problems(await Assert.ThrowsAsync<NavetteException>(h.ApplyAsync));
        var inUse = Assert.Single(streaming, p => p.StartsWith("node c: ", StringComparison.Ordinal));
        Assert.Matches(
            $"^node c: replication origin navette_a_to_c belongs to a subscription no longer in {System.Text.RegularExpressions.Regex.Escape(h.ConfigPath)} " +
            @"but is still in use \(replication origin with ID \d+ is already active for PID \d+\); stop navette run, then apply again$", inUse);
        ApplyKit.AssertProblems(streaming,
            $"node a: slot navette_a_to_c belongs to a subscription no longer in {h.ConfigPath} but is still streaming; stop navette run, then apply again",
            inUse);
        Assert.Equal(["navette_a_to_b", "navette_a_to_c"], await ApplyKit.StringsAsync(h["a"], "SELECT slot_name FROM pg_replication_slots ORDER BY 1"));
        Assert.Equal(["a_to_c"], await ApplyKit.StringsAsync(h["c"], "SELECT name FROM navette.subscription"));

        await h.StopDaemonAsync();
        await ApplyKit.WaitSlotInactiveAsync(h["a"], "navette_a_to_b");
        await ApplyKit.WaitSlotInactiveAsync(h["a"], "navette_a_to_c");
        var actions = await h.ApplyAsync();
        Assert.Equal(
        [
            "node a: slot navette_a_to_c dropped (its subscription was removed; the WAL it retained is released)",
            "node c: subscription a_to_c unregistered",
            "node c: replication origin navette_a_to_c dropped",
        ], actions);
        Assert.Equal(["navette_a_to_b"], await ApplyKit.StringsAsync(h["a"], "SELECT slot_name FROM pg_replication_slots ORDER BY 1"));
        Assert.Empty(await ApplyKit.StringsAsync(h["c"], "SELECT roname FROM pg_replication_origin"));
        Assert.Empty(await ApplyKit.StringsAsync(h["c"], "SELECT name FROM navette.subscription"));
        Assert.Empty(await ApplyKit.StringsAsync(h["c"], "SELECT subscription FROM navette.copy_progress"));
        Assert.Equal(["navette_a_to_b"], await ApplyKit.StringsAsync(h["b"], "SELECT roname FROM pg_replication_origin"));
        Assert.Equal(["a_to_b"], await ApplyKit.StringsAsync(h["b"], "SELECT name FROM navette.subscription"));
        Assert.Equal(["navette_shop"], await ApplyKit.StringsAsync(h["a"], "SELECT pubname FROM pg_publication"));
        Assert.Empty(await h.ApplyAsync());

        // A subscription cannot move to another origin: its progress is a position in the old origin's WAL.
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              a_to_b: { from: c, to: b, sets: [shop] }
            """);
        ApplyKit.AssertProblems(ApplyKit.Problems(await Assert.ThrowsAsync<NavetteException>(h.ApplyAsync)),
            $"subscription a_to_b: node b applies it from node a, but {h.ConfigPath} now says from: c; a subscription cannot change its origin: remove it, apply, then add it back under another name");

        // A slot lost after the target applied from it cannot be recreated silently: the changes since are gone.
        h.WriteConfig(withoutAToC);
        await h["a"].ExecuteAsync("SELECT pg_drop_replication_slot('navette_a_to_b')");
        ApplyKit.AssertProblems(ApplyKit.Problems(await Assert.ThrowsAsync<NavetteException>(h.ApplyAsync)),
            "subscription a_to_b: slot navette_a_to_b is missing on node a although b already applied from it; changes made since are not retained. " +
            "Remove the subscription from the file and apply, empty the target tables, then add it back with initial_copy: true");
    }

    [Fact]
    public async Task Changing_sets_updates_publication_membership_and_the_registration()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b");
        await h.OnAllAsync("""
            CREATE TABLE public.t1 (id int PRIMARY KEY);
            CREATE TABLE public.t2 (id int PRIMARY KEY);
            CREATE TABLE public.t3 (id int PRIMARY KEY);
            CREATE TABLE public.t4 (id int PRIMARY KEY);
            CREATE SCHEMA sales;
            CREATE TABLE sales.orders (id int PRIMARY KEY);
            CREATE TABLE sales.lines (id int PRIMARY KEY);
            """);
        // The other in-stream markers (compare and repair requests) are in every publication too, like the fence.
        const string publicationTables = "SELECT pubname || ':' || schemaname || '.' || tablename FROM pg_publication_tables WHERE schemaname <> 'navette' OR tablename = 'fence' ORDER BY 1";
        const string markers = "SELECT count(*) FROM pg_publication_tables WHERE schemaname = 'navette' AND tablename IN ('compare_request', 'repair_request')";
        h.WriteConfig("""
            sets:
              s1: { tables: [public.t1, public.t2] }
              s2: { tables: [public.t3] }
              s3: { tables: ["sales.*"] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [s1, s2, s3] }
            """);
        await h.ApplyAsync();
        Assert.Equal(
        [
            "navette_s1:navette.fence", "navette_s1:public.t1", "navette_s1:public.t2",
            "navette_s2:navette.fence", "navette_s2:public.t3",
            "navette_s3:navette.fence", "navette_s3:sales.lines", "navette_s3:sales.orders",
        ], await ApplyKit.StringsAsync(h["a"], publicationTables));
        Assert.Equal(6, await h["a"].ScalarAsync<long>(markers));

        // Change a set's tables, let a pattern pick up a new table, and drop a set from the subscription.
        await h.OnAllAsync("CREATE TABLE sales.refunds (id int PRIMARY KEY)");
        h.WriteConfig("""
            sets:
              s1: { tables: [public.t1, public.t4] }
              s2: { tables: [public.t3] }
              s3: { tables: ["sales.*"] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [s1, s3] }
            """);
        var actions = await h.ApplyAsync();
        Assert.Equal(
        [
            "node a: publication navette_s1 now has 2 table(s) (+1 -1); \"public\".\"t4\" copied by each subscription reading it, then streamed",
            "node a: publication navette_s3 now has 3 table(s) (+1 -0); \"sales\".\"refunds\" copied by each subscription reading it, then streamed",
            "node a: publication navette_s2 dropped (no subscription reads it any more)",
            "node b: subscription a_to_b updated (sets s1, s3, forward false)",
        ], actions);
        Assert.Equal(
        [
            "navette_s1:navette.fence", "navette_s1:public.t1", "navette_s1:public.t4",
            "navette_s3:navette.fence", "navette_s3:sales.lines", "navette_s3:sales.orders", "navette_s3:sales.refunds",
        ], await ApplyKit.StringsAsync(h["a"], publicationTables));
        Assert.Equal(["{s1,s3}"], await ApplyKit.StringsAsync(h["b"], "SELECT sets::text FROM navette.subscription"));
        Assert.Empty(await h.ApplyAsync());
    }
}
