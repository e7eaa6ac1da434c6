using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>
/// How the applier finds the row an UPDATE or DELETE is about: primary keys that change, unchanged TOASTed
/// values that must be left alone, REPLICA IDENTITY FULL with duplicates and columns without equality, and
/// REPLICA IDENTITY USING INDEX.
/// </summary>
public sealed class RowIdentityTests(ITestOutputHelper output)
{
    /// <summary>About 20 kB of text that pglz cannot shrink below the TOAST threshold.</summary>
    private const string Big = "(SELECT string_agg(md5(g::text || {0}), '') FROM generate_series(1, 600) g)";

    private static string BigValue(string seed) => string.Format(System.Globalization.CultureInfo.InvariantCulture, Big, seed);

    [Fact]
    public async Task Primary_key_changes_and_unchanged_toasted_values_reach_the_replica()
    {
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE single_pk (id integer PRIMARY KEY, big text, note text, blob bytea, small int);
            ALTER TABLE single_pk ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN blob SET STORAGE EXTERNAL;
            CREATE TABLE composite_pk (a integer, b text, c timestamptz, note text, big text, PRIMARY KEY (a, b, c));
            ALTER TABLE composite_pk ALTER COLUMN big SET STORAGE EXTERNAL;
            """);
        await s.Origin.ExecuteAsync($"""
            INSERT INTO single_pk SELECT g, {BigValue("g")}, 'copied', convert_to({BigValue("-g")}, 'UTF8'), g FROM generate_series(1, 20) g;
            INSERT INTO composite_pk SELECT g % 4, 'b' || g, '2024-01-01'::timestamptz + g * interval '1 hour', 'copied', {BigValue("g")} FROM generate_series(1, 20) g;
            """);
        await s.StartReplicationAsync("public.single_pk", "public.composite_pk");
        await s.AssertReplicatedAsync(("single_pk", 20), ("composite_pk", 20));
        // Large enough to be stored out of line (STORAGE EXTERNAL), so an update of another column sends them as "unchanged".
        Assert.True(await s.Origin.ScalarAsync<bool>("SELECT bool_and(octet_length(big) > 8192 AND octet_length(blob) > 8192) FROM single_pk"));

        await s.Origin.ExecuteAsync($"""
            INSERT INTO single_pk SELECT g, {BigValue("g")}, 'streamed', convert_to({BigValue("-g")}, 'UTF8'), g FROM generate_series(21, 40) g;
            INSERT INTO composite_pk SELECT g % 4, 'b' || g, '2024-01-01'::timestamptz + g * interval '1 hour', 'streamed', {BigValue("g")} FROM generate_series(21, 40) g;
            """);
        // Each statement in its own transaction, so each reaches the applier on its own as well as in batches.
        string[] steps =
        [
            "UPDATE single_pk SET note = 'only note changed'",
            "UPDATE single_pk SET id = id + 1000000 WHERE id % 2 = 0",
            "UPDATE single_pk SET big = big || 'x' WHERE id % 3 = 0",
            "UPDATE single_pk SET blob = NULL, note = NULL WHERE id % 5 = 0",
            "UPDATE single_pk SET small = small + 1, id = id + 100000000 WHERE id % 7 = 0",
            "UPDATE composite_pk SET b = b || '!' WHERE a = 1",
            "UPDATE composite_pk SET c = c + interval '1 day' WHERE a = 2",
            "UPDATE composite_pk SET a = a + 10, b = upper(b), note = 'all key columns changed' WHERE a = 3",
            "UPDATE composite_pk SET note = 'key kept' WHERE a = 0",
            "DELETE FROM single_pk WHERE id % 4 = 1",
            "DELETE FROM composite_pk WHERE b LIKE '%5%'",
        ];
        foreach (var step in steps) await s.Origin.ExecuteAsync(step);
        await s.AssertReplicatedAsync(("single_pk", 25), ("composite_pk", 25));

        // The same statements in one transaction: the applier sees a key change, then more changes to the new key.
        await s.Origin.ExecuteAsync("BEGIN;\n" + string.Join(";\n", steps) + ";\nCOMMIT;");
        await s.AssertReplicatedAsync(("single_pk", 15), ("composite_pk", 20));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM single_pk WHERE big IS NULL OR octet_length(big) < 8192"));
    }

    [Fact]
    public async Task Replica_identity_full_changes_exactly_one_of_identical_rows()
    {
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE full_rows (a integer, j json, jb jsonb, p point, t text, n numeric, flag boolean, addr inet, code char(6), doc xml, big text);
            ALTER TABLE full_rows REPLICA IDENTITY FULL;
            ALTER TABLE full_rows ALTER COLUMN big SET STORAGE EXTERNAL;
            CREATE COLLATION case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
            CREATE TABLE near_dupes (n numeric, f double precision, i interval, jb jsonb, t text COLLATE case_blind, tag text);
            ALTER TABLE near_dupes REPLICA IDENTITY FULL;
            CREATE INDEX ON near_dupes (n, f, i, jb, t);
            CREATE TABLE docs (title text, body text);
            ALTER TABLE docs REPLICA IDENTITY FULL;
            ALTER TABLE docs ALTER COLUMN title SET STORAGE EXTERNAL, ALTER COLUMN body SET STORAGE EXTERNAL;
            """);
        const string rows = """
            INSERT INTO full_rows
            SELECT g % 5, '{"k": 1,  "s": "x"}', '{"k": 1}', point(g % 5, 0.5), 'dup', 1.50, true, '10.0.0.1', 'ab', '<?xml version="1.0"?><r/>', NULL
              FROM generate_series(1, 15) g;
            INSERT INTO full_rows VALUES
              (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (7, '{"k":1,"s":"x"}', 'null', '(NaN,1)', '', 'NaN', false, '::1/128', '', '', NULL),
              (7, '{"k": 1,  "s": "x"}', 'null', '(NaN,1)', NULL, 'NaN', false, '::1/128', '', '', NULL);
            """;
        await s.Origin.ExecuteAsync(rows + $"""
            INSERT INTO full_rows (a, t, big) SELECT 100 + g % 2, 'big', {BigValue("g % 2")} FROM generate_series(1, 4) g;
            INSERT INTO docs SELECT {BigValue("'t' || g")}, {BigValue("'b' || g")} FROM generate_series(1, 3) g;
            """);
        await s.StartReplicationAsync("public.full_rows", "public.docs", "public.near_dupes");
        await s.AssertReplicatedAsync(("full_rows", 23), ("docs", 3));

        // Rows equal by their types' = but printed differently are different rows: the first one inserted is
        // the one an = match would pick, the second is the one changed.
        await s.Origin.ExecuteAsync("""
            INSERT INTO near_dupes VALUES (1.50, 0, '24:00:00', '{"a": 1.0}', 'ABC', 'same'), (1.5, '-0', '1 day', '{"a": 1}', 'abc', 'same');
            INSERT INTO near_dupes VALUES (1.50, 0, '24:00:00', '{"a": 1.0}', 'ABC', 'same'), (1.5, '-0', '1 day', '{"a": 1}', 'abc', 'same');
            """);
        await s.Origin.ExecuteAsync("UPDATE near_dupes SET tag = 'changed' WHERE ctid = (SELECT ctid FROM near_dupes WHERE n::text = '1.5' LIMIT 1)");
        await s.Origin.ExecuteAsync("DELETE FROM near_dupes WHERE ctid = (SELECT ctid FROM near_dupes WHERE n::text = '1.5' AND tag = 'same' LIMIT 1)");
        await s.AssertReplicatedAsync(("near_dupes", 3));

        // Every column TOASTed and none changed: the new image holds nothing but "unchanged" markers.
        await s.Origin.ExecuteAsync("UPDATE docs SET title = title");
        await s.Origin.ExecuteAsync("UPDATE docs SET body = body || 'x' WHERE ctid = (SELECT min(ctid) FROM docs)");
        await s.AssertReplicatedAsync(("docs", 3));

        await s.Origin.ExecuteAsync(rows.Replace("'dup'", "'streamed dup'", StringComparison.Ordinal));
        string[] steps =
        [
            // One of three identical rows (a = 1 and a = 2 each have three).
            "UPDATE full_rows SET t = 'one of three' WHERE ctid = (SELECT ctid FROM full_rows WHERE a = 1 AND t = 'dup' LIMIT 1)",
            // All identical rows: three identical changes, each must find a different row.
            "UPDATE full_rows SET n = n + 1 WHERE a = 2",
            "UPDATE full_rows SET a = -1 WHERE ctid = (SELECT ctid FROM full_rows WHERE a IS NULL LIMIT 1)",
            // json whose text differs only in whitespace is a different row.
            """UPDATE full_rows SET t = 'compact json' WHERE a = 7 AND j::text = '{"k":1,"s":"x"}'""",
            "UPDATE full_rows SET p = point(9, 9), flag = NULL WHERE a = 3",
            // The big value is left unchanged (sent only in the old image).
            "UPDATE full_rows SET t = 'big kept' WHERE ctid = (SELECT ctid FROM full_rows WHERE a = 100 LIMIT 1)",
            "UPDATE full_rows SET big = big || 'changed' WHERE a = 101",
            "DELETE FROM full_rows WHERE ctid = (SELECT ctid FROM full_rows WHERE a = 4 LIMIT 1)",
            "DELETE FROM full_rows WHERE a IS NULL",
            "DELETE FROM full_rows WHERE ctid = (SELECT ctid FROM full_rows WHERE a = 7 AND t IS NULL LIMIT 1)",
        ];
        foreach (var step in steps) await s.Origin.ExecuteAsync(step);
        await s.AssertReplicatedAsync(("full_rows", 35));
        await s.Origin.ExecuteAsync("BEGIN;\n" + string.Join(";\n", steps) + ";\nCOMMIT;");
        await s.AssertReplicatedAsync(("full_rows", 30));
        Assert.Equal(2L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM full_rows WHERE a = 100 AND octet_length(big) > 8192"));
    }

    [Fact]
    public async Task Replica_identity_using_a_unique_index_that_is_not_the_primary_key()
    {
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE by_index (id bigint PRIMARY KEY, payload jsonb, code text NOT NULL, note text, region integer NOT NULL, big text);
            CREATE UNIQUE INDEX by_index_region_code ON by_index (region, code);
            ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_region_code;
            ALTER TABLE by_index ALTER COLUMN big SET STORAGE EXTERNAL;
            CREATE TABLE no_pk (payload text, code text NOT NULL, seq integer NOT NULL);
            CREATE UNIQUE INDEX no_pk_seq_code ON no_pk (seq, code);
            ALTER TABLE no_pk REPLICA IDENTITY USING INDEX no_pk_seq_code;
            """);
        const string insert = """
            INSERT INTO by_index SELECT {0} + g, jsonb_build_object('g', g), 'c' || g, 'n', g % 3, CASE WHEN g % 4 = 0 THEN {1} END FROM generate_series(1, 30) g;
            INSERT INTO no_pk SELECT 'p' || g, 'c' || g % 7, {0} + g FROM generate_series(1, 30) g;
            """;
        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, insert, 0, BigValue("g")));
        await s.StartReplicationAsync("public.by_index", "public.no_pk");
        await s.AssertReplicatedAsync(("by_index", 30), ("no_pk", 30));

        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, insert.Replace("'c' || g", "'s' || g", StringComparison.Ordinal), 1000, BigValue("g")));
        string[] steps =
        [
            "UPDATE by_index SET note = 'identity kept'",
            "UPDATE by_index SET id = id + 100000 WHERE id % 5 = 0",
            "UPDATE by_index SET code = code || '-renamed' WHERE region = 1",
            "UPDATE by_index SET region = region + 10, payload = NULL WHERE id % 2 = 0",
            "UPDATE no_pk SET payload = upper(payload)",
            "UPDATE no_pk SET seq = -seq WHERE seq % 3 = 0",
            "DELETE FROM by_index WHERE id % 7 = 0",
            "DELETE FROM no_pk WHERE abs(seq) % 4 = 0",
        ];
        foreach (var step in steps) await s.Origin.ExecuteAsync(step);
        await s.AssertReplicatedAsync(("by_index", 45), ("no_pk", 40));
    }
}
