using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>navette apply compares every replicated table between origin and target before changing anything.</summary>
public sealed class TablePreconditionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_table_problem_is_reported_with_what_to_do_and_nothing_is_changed()
    {
        var clusters = await ApplyKit.StartAsync(("origin", null), ("replica", null));
        await using var origin = clusters[0];
        await using var replica = clusters[1];
        await origin.ExecuteAsync("""
            CREATE TABLE public.nokey (a int, b text);
            CREATE TABLE public.absent (id int PRIMARY KEY);
            CREATE TABLE public.short (id int PRIMARY KEY, note text, qty int);
            CREATE TABLE public.typed (id int PRIMARY KEY, price numeric(10,2));
            CREATE TABLE public.strict (id int PRIMARY KEY);
            CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
            CREATE TABLE public.fine (id int PRIMARY KEY, total numeric(10,2), doubled int GENERATED ALWAYS AS (id * 2) STORED);
            CREATE TABLE public.filled (id int PRIMARY KEY);
            """);
        await replica.ExecuteAsync("""
            CREATE TABLE public.nokey (a int, b text);
            CREATE TABLE public.short (id int PRIMARY KEY, note text);
            CREATE TABLE public.typed (id int PRIMARY KEY, price real);
            CREATE TABLE public.strict (id int PRIMARY KEY, region text NOT NULL);
            CREATE TABLE public.scratch (id int PRIMARY KEY);
            CREATE TABLE public.fine (id int PRIMARY KEY, total numeric(10,2), extra text NOT NULL DEFAULT 'x', doubled int);
            CREATE TABLE public.filled (id int PRIMARY KEY);
            INSERT INTO public.filled VALUES (1);
            """);
        using var kit = new ApplyKit(output);
        var config = kit.Config([("origin", origin.ConnInfo), ("replica", replica.ConnInfo)], """
            sets:
              shop:
                tables:
                  - public.nokey
                  - public.absent
                  - public.short
                  - public.typed
                  - public.strict
                  - public.scratch
                  - public.ghost
                  - public.fine
                  - public.filled
            subscriptions:
              origin_to_replica: { from: origin, to: replica, sets: [shop] }
            """);

        var problems = await kit.ProblemsAsync(config);

        ApplyKit.AssertProblems(problems,
            "set shop: table public.nokey on node origin has no primary key or replica identity, so its UPDATEs and DELETEs cannot be replicated; add a primary key, or run ALTER TABLE \"public\".\"nokey\" REPLICA IDENTITY FULL;",
            "subscription origin_to_replica: table public.absent is missing on node replica; create it there with the same columns as on origin, or set copy_schema: true on the subscription to have navette apply create it",
            "subscription origin_to_replica: column qty of public.short (integer) exists on origin but not on replica; ALTER TABLE \"public\".\"short\" ADD COLUMN \"qty\" integer on replica",
            "subscription origin_to_replica: column price of public.typed is numeric(10,2) on origin but real on replica; make the types identical",
            "subscription origin_to_replica: column region of public.strict exists only on replica and is NOT NULL without a default, so replicated rows cannot be inserted; give it a default or drop NOT NULL",
            "set shop: table public.scratch on node origin is unlogged; its changes are not in the WAL and cannot be replicated",
            $"{kit.ConfigPath}:{kit.LineOf("public.ghost")}: table public.ghost of set shop does not exist on node origin (or is a partition: list its partitioned parent instead)",
            "subscription origin_to_replica: table public.filled on node replica already holds rows, which the initial copy would mix with those of origin; empty it (TRUNCATE \"public\".\"filled\") or set initial_copy: false if it already holds the same data");
        await ApplyKit.AssertUntouchedAsync(origin);
        await ApplyKit.AssertUntouchedAsync(replica);
    }

    [Fact]
    public async Task A_table_without_key_is_refused_until_it_has_replica_identity_full_and_then_replicates_updates_and_deletes()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.events (kind text, payload jsonb, at int)");
        await h["origin"].ExecuteAsync("""
            INSERT INTO public.events
            SELECT 'k' || (g % 10), jsonb_build_object('n', g % 7), g % 5 FROM generate_series(1, 300) g;
            INSERT INTO public.events VALUES ('dup', '{"same": true}', 1), ('dup', '{"same": true}', 1), ('dup', '{"same": true}', 1);
            """);
        h.WriteConfig("""
            sets:
              audit: { tables: [public.events] }
            subscriptions:
              origin_to_replica: { from: origin, to: replica, sets: [audit] }
            """);

        var refused = await Assert.ThrowsAsync<NavetteException>(h.ApplyAsync);
        ApplyKit.AssertProblems(ApplyKit.Problems(refused),
            "set audit: table public.events on node origin has no primary key or replica identity, so its UPDATEs and DELETEs cannot be replicated; add a primary key, or run ALTER TABLE \"public\".\"events\" REPLICA IDENTITY FULL;");
        await ApplyKit.AssertUntouchedAsync(h["origin"]);

        await h["origin"].ExecuteAsync("ALTER TABLE \"public\".\"events\" REPLICA IDENTITY FULL;");
        Assert.NotEmpty(await h.ApplyAsync());
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.events", minRows: 303);

        await h["origin"].ExecuteAsync("""
            UPDATE public.events SET at = at + 100, payload = payload || '{"updated": true}' WHERE kind IN ('k1', 'k2');
            DELETE FROM public.events WHERE kind = 'k3';
            DELETE FROM public.events WHERE ctid = (SELECT ctid FROM public.events WHERE kind = 'dup' LIMIT 1);
            UPDATE public.events SET at = 2 WHERE ctid = (SELECT ctid FROM public.events WHERE kind = 'dup' LIMIT 1);
            INSERT INTO public.events VALUES ('late', NULL, NULL);
            UPDATE public.events SET kind = 'late2' WHERE kind = 'late';
            """);
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.events", minRows: 250);
        Assert.Equal(2L, await h["replica"].ScalarAsync<long>("SELECT count(*) FROM public.events WHERE kind = 'dup'"));
    }
}
