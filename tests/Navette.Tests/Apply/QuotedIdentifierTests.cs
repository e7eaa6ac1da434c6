using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>
/// Schema, table, column and type names that only work quoted: mixed case, spaces, double quotes, dots,
/// keywords and Unicode, through the copy, inserts, key changes, deletes, REPLICA IDENTITY FULL and TRUNCATE.
/// </summary>
public sealed class QuotedIdentifierTests(ITestOutputHelper output)
{
    private const string Order = "\"My Schema\".\"Order \"\"X\"\"\"";
    private const string Unicode = "\"ünï Schéma \"\"q\"\"\".\"Tåble 😀\"";
    private const string Full = "\"My Schema\".\"Full.Table\"";
    private const string Upper = "public.\"UPPER\"";

    [Fact]
    public async Task Names_that_need_quoting_replicate_everywhere()
    {
        await using var s = await ApplyScenario.StartAsync(output, $""""
            CREATE SCHEMA "My Schema";
            CREATE SCHEMA "ünï Schéma ""q""";
            CREATE TYPE "My Schema"."Status ""Enum""" AS ENUM ('New', 'Dõne', 'with "quote"');
            CREATE DOMAIN "ünï Schéma ""q"""."Pösitive" AS integer CHECK (VALUE > 0);
            CREATE TABLE {Order} (
                "Id" integer PRIMARY KEY,
                "Customer Name" text,
                "select" integer,
                "ÜberWert" numeric,
                "a""b" text,
                "MiXeD" "My Schema"."Status ""Enum""",
                "weird.col" date,
                " space " text,
                "Statuses" "My Schema"."Status ""Enum"""[]);
            CREATE TABLE {Unicode} (
                "Kéy" text,
                "Pärt" "ünï Schéma ""q"""."Pösitive",
                "välue 😀" jsonb,
                PRIMARY KEY ("Kéy", "Pärt"));
            CREATE TABLE {Full} ("A" integer, "b B" point, "C""" text, "user" text);
            ALTER TABLE {Full} REPLICA IDENTITY FULL;
            CREATE TABLE {Upper} (id integer PRIMARY KEY, "Col" text, "COL" text, col text);
            """");
        const string rows = """"
            INSERT INTO "My Schema"."Order ""X""" SELECT {0} + g, 'Name ' || g, g, g * 1.5, 'a"b' || g, (ARRAY['New', 'Dõne', 'with "quote"']::"My Schema"."Status ""Enum"""[])[1 + g % 3],
                   '2024-01-01'::date + g, ' ' || g || ' ', ARRAY['New', 'with "quote"']::"My Schema"."Status ""Enum"""[] FROM generate_series(1, 20) g;
            INSERT INTO "ünï Schéma ""q"""."Tåble 😀" SELECT 'k' || ({0} + g) || 'ß', 1 + g % 3, jsonb_build_object('ö', g) FROM generate_series(1, 20) g;
            INSERT INTO "My Schema"."Full.Table" SELECT g % 4, point(g, -g), 'c"' || g % 4, 'u' FROM generate_series(1, 20) g;
            INSERT INTO public."UPPER" SELECT {0} + g, 'Col', 'COL', 'col' FROM generate_series(1, 20) g;
            """";
        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, rows, 0));
        await s.StartReplicationAsync(Order, Unicode, Full, Upper);
        await s.AssertReplicatedAsync((Order, 20), (Unicode, 20), (Full, 20), (Upper, 20));

        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, rows, 100));
        string[] steps =
        [
            $""""UPDATE {Order} SET "Customer Name" = upper("Customer Name"), "MiXeD" = 'with "quote"', "select" = NULL WHERE "Id" % 2 = 0"""",
            $""""UPDATE {Order} SET "Id" = "Id" + 1000 WHERE "Id" % 3 = 0"""",
            $""""UPDATE {Unicode} SET "Kéy" = "Kéy" || '✓', "välue 😀" = jsonb_build_object('ü', jsonb_build_array(1, 'ä')) WHERE "Pärt" = 2"""",
            $""""UPDATE {Unicode} SET "Pärt" = "Pärt" + 10 WHERE "Kéy" LIKE '%1_ß'"""",
            $""""UPDATE {Full} SET "C""" = 'changed' WHERE ctid = (SELECT ctid FROM {Full} WHERE "A" = 1 LIMIT 1)"""",
            $""""UPDATE {Upper} SET "COL" = 'upper changed', col = NULL WHERE id % 2 = 1"""",
            $""""DELETE FROM {Order} WHERE "Id" % 5 = 0"""",
            $""""DELETE FROM {Unicode} WHERE "Pärt" = 3"""",
            $""""DELETE FROM {Full} WHERE ctid = (SELECT ctid FROM {Full} WHERE "A" = 2 LIMIT 1)"""",
            $""""DELETE FROM {Upper} WHERE id % 7 = 0"""",
        ];
        foreach (var step in steps) await s.Origin.ExecuteAsync(step);
        await s.AssertReplicatedAsync((Order, 30), (Unicode, 20), (Full, 35), (Upper, 30));

        await s.Origin.ExecuteAsync($"TRUNCATE {Full}, {Upper}; INSERT INTO {Full} VALUES (1, '(1,1)', 'after', 'truncate');");
        await s.AssertReplicatedAsync((Order, 30), (Unicode, 20), (Full, 1));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>($"SELECT count(*) FROM {Upper}"));
    }

    /// <summary>Names written as SQL injections: quoted, they are only names (the table x they mention must survive).</summary>
    private const string Injection = "public.\"a\"\"; DROP TABLE x; --\"";
    private const string InjectionUnicode = "\"a\"\"; DROP TABLE x; --\".\"表 ); DELETE FROM x; --\"";

    [Fact]
    public async Task Names_written_as_sql_injections_are_only_names()
    {
        await using var s = await ApplyScenario.StartAsync(output, $""""
            CREATE TABLE public.x (id int PRIMARY KEY);
            INSERT INTO public.x VALUES (1);
            CREATE SCHEMA "a""; DROP TABLE x; --";
            CREATE TABLE {Injection} ("a""; DROP TABLE x; --" integer PRIMARY KEY, "'); DROP TABLE x; --" text, "Ωμέγα ; --" text);
            CREATE TABLE {InjectionUnicode} ("ключ"" OR 1=1 --" text PRIMARY KEY, "値 */ SELECT 1; /*" integer);
            """");
        await s.Origin.ExecuteAsync($""""
            INSERT INTO {Injection} SELECT g, 'v''' || g, 'ω' || g FROM generate_series(1, 30) g;
            INSERT INTO {InjectionUnicode} SELECT 'k"' || g, g FROM generate_series(1, 30) g;
            """");
        await s.StartReplicationAsync(Injection, InjectionUnicode);
        await s.AssertReplicatedAsync((Injection, 30), (InjectionUnicode, 30));
        await s.Origin.ExecuteAsync($""""
            UPDATE {Injection} SET "'); DROP TABLE x; --" = 'changed; --' WHERE "a""; DROP TABLE x; --" % 2 = 0;
            UPDATE {Injection} SET "a""; DROP TABLE x; --" = "a""; DROP TABLE x; --" + 100 WHERE "a""; DROP TABLE x; --" % 5 = 0;
            DELETE FROM {Injection} WHERE "a""; DROP TABLE x; --" % 7 = 0;
            UPDATE {InjectionUnicode} SET "値 */ SELECT 1; /*" = -1 WHERE "ключ"" OR 1=1 --" LIKE 'k"1%';
            DELETE FROM {InjectionUnicode} WHERE "値 */ SELECT 1; /*" = 3;
            """");
        await s.AssertReplicatedAsync((Injection, 25), (InjectionUnicode, 29));
        Assert.Equal(1L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM public.x"));
        Assert.Equal(1L, await s.Origin.ScalarAsync<long>("SELECT count(*) FROM public.x"));
    }
}
