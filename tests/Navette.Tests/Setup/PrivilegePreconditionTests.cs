using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>navette apply checks the roles it connects as, says what to grant, and works once it is granted.</summary>
public sealed class PrivilegePreconditionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Non_superusers_without_the_needed_privileges_are_refused_then_accepted_once_granted()
    {
        var clusters = await ApplyKit.StartAsync(("origin", null), ("replica", null));
        await using var origin = clusters[0];
        await using var replica = clusters[1];
        await origin.ExecuteAsync("""
            CREATE ROLE shop_reader LOGIN;
            CREATE TABLE public.items (id int PRIMARY KEY, name text);
            CREATE TABLE public.notes (id int PRIMARY KEY, body text);
            ALTER TABLE public.notes OWNER TO shop_reader;
            REVOKE SELECT ON public.notes FROM shop_reader;
            INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
            INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 20) g;
            """);
        await replica.ExecuteAsync("""
            CREATE ROLE applier LOGIN;
            CREATE TABLE public.items (id int PRIMARY KEY, name text);
            CREATE TABLE public.notes (id int PRIMARY KEY, body text);
            """);
        using var kit = new ApplyKit(output);
        const string rest = """
            sets:
              shop: { tables: [public.items, public.notes] }
            subscriptions:
              origin_to_replica: { from: origin, to: replica, sets: [shop] }
            """;
        var config = kit.Config([
            ("origin", origin.ConnInfo.Replace("user=postgres", "user=shop_reader", StringComparison.Ordinal)),
            ("replica", replica.ConnInfo.Replace("user=postgres", "user=applier", StringComparison.Ordinal))], rest);

        ApplyKit.AssertProblems(await kit.ProblemsAsync(config),
            "node origin: role shop_reader cannot create the navette schema; GRANT CREATE ON DATABASE \"postgres\" TO \"shop_reader\" (or connect as a superuser)",
            "node origin: role shop_reader can neither create replication slots nor stream; ALTER ROLE \"shop_reader\" REPLICATION (or connect as a superuser)",
            "set shop: role shop_reader does not own table public.items on node origin, and only its owner can publish it; ALTER TABLE \"public\".\"items\" OWNER TO \"shop_reader\" (or connect as a superuser)",
            "set shop: role shop_reader cannot read table public.notes on node origin, which the initial copy needs; GRANT SELECT ON \"public\".\"notes\" TO \"shop_reader\"",
            "node replica: role applier cannot create the navette schema; GRANT CREATE ON DATABASE \"postgres\" TO \"applier\" (or connect as a superuser)",
            "node replica: role applier is not a superuser, and applying changes needs session_replication_role = replica and replication origins, which PostgreSQL 15 reserves to superusers unless granted; " +
            "GRANT SET ON PARAMETER session_replication_role TO \"applier\"; GRANT EXECUTE ON FUNCTION " + string.Join(", ", Navette.Setup.NodeInspector.ApplyFunctions.Select(f => "pg_catalog." + f)) +
            " TO \"applier\" (or connect to replica as a superuser; docs/security.md lists the target role's privileges)",
            "node replica: role applier cannot create in schema public, and the initial copy rebuilds the indexes of its tables there after the data; GRANT CREATE ON SCHEMA \"public\" TO \"applier\" (or connect as a superuser)",
            "subscription origin_to_replica: role applier does not own table public.items on node replica (its owner is postgres), and the apply needs the owner's rights (the initial copy empties it and rebuilds its indexes, schema changes alter it); ALTER TABLE \"public\".\"items\" OWNER TO \"applier\" (or connect as a superuser)",
            "subscription origin_to_replica: role applier does not own table public.notes on node replica (its owner is postgres), and the apply needs the owner's rights (the initial copy empties it and rebuilds its indexes, schema changes alter it); ALTER TABLE \"public\".\"notes\" OWNER TO \"applier\" (or connect as a superuser)");
        await ApplyKit.AssertUntouchedAsync(origin);
        await ApplyKit.AssertUntouchedAsync(replica);

        // Doing what the messages say is enough: neither node's role is a superuser, and replication works.
        await origin.ExecuteAsync("""
            GRANT CREATE ON DATABASE "postgres" TO "shop_reader";
            ALTER ROLE "shop_reader" REPLICATION;
            ALTER TABLE "public"."items" OWNER TO "shop_reader";
            GRANT SELECT ON "public"."notes" TO "shop_reader";
            """);
        await replica.ExecuteAsync($"""
            GRANT CREATE ON DATABASE "postgres" TO "applier";
            GRANT CREATE ON SCHEMA "public" TO "applier";
            GRANT SET ON PARAMETER session_replication_role TO "applier";
            GRANT EXECUTE ON FUNCTION {string.Join(", ", Navette.Setup.NodeInspector.ApplyFunctions.Select(f => "pg_catalog." + f))} TO "applier";
            ALTER TABLE "public"."items" OWNER TO "applier";
            ALTER TABLE "public"."notes" OWNER TO "applier";
            """);
        config = kit.Config([
            ("origin", origin.ConnInfo.Replace("user=postgres", "user=shop_reader", StringComparison.Ordinal)),
            ("replica", replica.ConnInfo.Replace("user=postgres", "user=applier", StringComparison.Ordinal))], rest);
        var actions = await kit.ApplyAsync(config);
        Assert.Contains("node origin: publication navette_shop created with 2 table(s)", actions);
        Assert.Equal("shop_reader", await origin.ScalarAsync<string>("SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = 'navette_shop'"));

        await using (kit.RunDaemon(config))
        {
            await ApplyKit.WaitCaughtUpAsync(config);
            await origin.ExecuteAsync("UPDATE public.items SET name = upper(name) WHERE id % 2 = 0; DELETE FROM public.notes WHERE id > 10");
            await ApplyKit.WaitCaughtUpAsync(config);
        }
        await TableCompare.AssertIdenticalAsync(origin, replica, "public.items", minRows: 50);
        await TableCompare.AssertIdenticalAsync(origin, replica, "public.notes", minRows: 10);
    }
}
