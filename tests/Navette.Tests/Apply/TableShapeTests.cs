using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>Partitioned tables, generated columns and TRUNCATE.</summary>
public sealed class TableShapeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Partitioned_tables_replicate_through_their_root_including_rows_changing_partition()
    {
        // The origin publishes through the root; the replica has the same partitioned table (with its own,
        // different partition bounds) and, for "flat", a plain table.
        const string origin = """
            CREATE TABLE events (id bigint, at date NOT NULL, kind text NOT NULL, payload jsonb, PRIMARY KEY (id, at, kind)) PARTITION BY RANGE (at);
            CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
            CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (kind);
            CREATE TABLE events_2024_a PARTITION OF events_2024 FOR VALUES IN ('a');
            CREATE TABLE events_2024_other PARTITION OF events_2024 DEFAULT;
            -- A partition with its own physical layout (other column order, a dropped column): pgoutput maps its
            -- rows to the root's.
            CREATE TABLE events_default (kind text NOT NULL, gone integer, payload jsonb, at date NOT NULL, id bigint NOT NULL);
            ALTER TABLE events_default DROP COLUMN gone;
            ALTER TABLE events ATTACH PARTITION events_default DEFAULT;
            CREATE TABLE flat (id integer NOT NULL, bucket integer NOT NULL, note text, PRIMARY KEY (id, bucket)) PARTITION BY HASH (bucket);
            CREATE TABLE flat_0 PARTITION OF flat FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE flat_1 PARTITION OF flat FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            """;
        const string replica = """
            CREATE TABLE events (id bigint, at date NOT NULL, kind text NOT NULL, payload jsonb, PRIMARY KEY (id, at, kind)) PARTITION BY RANGE (at);
            CREATE TABLE events_old PARTITION OF events FOR VALUES FROM (MINVALUE) TO ('2024-06-01');
            CREATE TABLE events_new PARTITION OF events FOR VALUES FROM ('2024-06-01') TO (MAXVALUE);
            CREATE TABLE flat (id integer NOT NULL, bucket integer NOT NULL, note text, PRIMARY KEY (id, bucket));
            """;
        await using var s = await ApplyScenario.StartAsync(output, "SELECT 1");
        await s.Origin.ExecuteAsync(origin);
        await s.Replica.ExecuteAsync(replica);

        const string insert = """
            INSERT INTO events SELECT {0} + g, '2023-01-01'::date + g * 7, (ARRAY['a', 'b', 'c'])[1 + g % 3], jsonb_build_object('g', g) FROM generate_series(1, 150) g;
            INSERT INTO flat SELECT {0} + g, g % 10, 'n' || g FROM generate_series(1, 50) g;
            """;
        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, insert, 0));
        await s.StartReplicationAsync("public.events", "public.flat");
        await s.AssertReplicatedAsync(("events", 150), ("flat", 50));

        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, insert, 1000));
        string[] steps =
        [
            // Within a partition, then across partitions (2023 -> 2024, into and out of the default partition,
            // and between sub-partitions of 2024).
            "UPDATE events SET payload = payload || '{\"touched\": true}' WHERE id % 2 = 0",
            "UPDATE events SET at = at + 365 WHERE id % 3 = 0",
            "UPDATE events SET at = '2030-01-01' WHERE id % 11 = 0",
            "UPDATE events SET kind = 'a' WHERE at >= '2024-01-01' AND at < '2025-01-01' AND kind <> 'a' AND id % 4 = 1",
            "UPDATE events SET at = '2023-06-01', kind = 'z' WHERE at >= '2030-01-01' AND id % 2 = 1",
            "UPDATE flat SET bucket = bucket + 1 WHERE id % 2 = 0",
            "UPDATE flat SET note = NULL WHERE id % 3 = 0",
            "DELETE FROM events WHERE id % 7 = 0",
            "DELETE FROM flat WHERE id % 5 = 0",
        ];
        foreach (var step in steps) await s.Origin.ExecuteAsync(step);
        await s.AssertReplicatedAsync(("events", 250), ("flat", 80));
        Assert.True(await s.Origin.ScalarAsync<long>("SELECT count(*) FROM events_default") > 0);
        Assert.True(await s.Replica.ScalarAsync<long>("SELECT count(*) FROM events_new") > 0);

        await s.Origin.ExecuteAsync("BEGIN;\n" + string.Join(";\n", steps) + ";\nCOMMIT;");
        await s.AssertReplicatedAsync(("events", 200), ("flat", 60));

        await s.Origin.ExecuteAsync("TRUNCATE events; INSERT INTO events VALUES (1, '2024-02-02', 'a', NULL)");
        await s.AssertReplicatedAsync(("events", 1), ("flat", 60));
    }

    [Fact]
    public async Task Changes_to_an_inheritance_parent_leave_its_children_alone()
    {
        // Parent and child are published as separate tables; a key can exist in both.
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE animal (id integer PRIMARY KEY, name text);
            CREATE TABLE dog (good boolean) INHERITS (animal);
            ALTER TABLE dog ADD PRIMARY KEY (id);
            CREATE TABLE tagged (id integer, tag text);
            ALTER TABLE tagged REPLICA IDENTITY FULL;
            CREATE TABLE tagged_child () INHERITS (tagged);
            ALTER TABLE tagged_child REPLICA IDENTITY FULL;
            """);
        const string fill = """
            INSERT INTO animal SELECT g, 'animal ' || g FROM generate_series(1, 10) g;
            INSERT INTO dog SELECT g, 'dog ' || g, true FROM generate_series(1, 10) g;
            INSERT INTO tagged SELECT g, 'same' FROM generate_series(1, 5) g;
            INSERT INTO tagged_child SELECT g, 'same' FROM generate_series(1, 5) g;
            """;
        await s.Origin.ExecuteAsync(fill);
        await s.StartReplicationAsync("public.animal", "public.dog", "public.tagged", "public.tagged_child");
        await s.Origin.ExecuteAsync("""
            UPDATE ONLY animal SET name = 'renamed' WHERE id <= 3;
            UPDATE ONLY animal SET id = id + 100 WHERE id = 4;
            DELETE FROM ONLY animal WHERE id = 5;
            UPDATE ONLY tagged SET tag = 'parent only' WHERE id = 1;
            DELETE FROM ONLY tagged WHERE id = 2;
            UPDATE dog SET name = 'dog only' WHERE id = 6;
            """);
        await s.AssertReplicatedAsync(("ONLY animal", 9), ("dog", 10), ("ONLY tagged", 4), ("tagged_child", 5));
        await s.Origin.ExecuteAsync("TRUNCATE ONLY animal; TRUNCATE ONLY tagged;");
        await s.AssertReplicatedAsync(("dog", 10), ("tagged_child", 5));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>("SELECT (SELECT count(*) FROM ONLY animal) + (SELECT count(*) FROM ONLY tagged)"));
    }

    [Fact]
    public async Task Stored_generated_columns_are_computed_by_the_replica()
    {
        await using var s = await ApplyScenario.StartAsync(output, "SELECT 1");
        await s.Origin.ExecuteAsync("""
            CREATE TABLE priced (id integer PRIMARY KEY, name text, price numeric, qty integer,
                total numeric GENERATED ALWAYS AS (price * qty) STORED,
                label text GENERATED ALWAYS AS (upper(name) || '#' || id) STORED);
            """);
        // The replica has the same generated columns in another order, plus one of its own.
        await s.Replica.ExecuteAsync("""
            CREATE TABLE priced (id integer PRIMARY KEY,
                label text GENERATED ALWAYS AS (upper(name) || '#' || id) STORED,
                name text, qty integer, price numeric,
                total numeric GENERATED ALWAYS AS (price * qty) STORED,
                search tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(name, '') || ' ' || id)) STORED);
            """);
        await s.Origin.ExecuteAsync("INSERT INTO priced (id, name, price, qty) SELECT g, 'item ' || g, g * 1.25, g % 4 FROM generate_series(1, 30) g");
        await s.StartReplicationAsync("public.priced");
        await s.Origin.ExecuteAsync("""
            INSERT INTO priced (id, name, price, qty) SELECT g, 'item ' || g, g * 1.25, g % 4 FROM generate_series(31, 60) g;
            UPDATE priced SET qty = qty + 10 WHERE id % 2 = 0;
            UPDATE priced SET id = id + 100, name = NULL WHERE id % 3 = 0;
            DELETE FROM priced WHERE id % 5 = 0;
            """);
        await s.WaitCaughtUpAsync();

        const string columns = "SELECT string_agg(format('%s|%s|%s|%s|%s|%s', id, name, price, qty, total, label), E'\\n' ORDER BY id) FROM priced";
        var expected = await s.Origin.ScalarAsync<string>(columns);
        Assert.Equal(expected, await s.Replica.ScalarAsync<string>(columns));
        Assert.Contains("ITEM 31#31", expected, StringComparison.Ordinal);
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>(
            "SELECT count(*) FROM priced WHERE search IS DISTINCT FROM to_tsvector('simple', coalesce(name, '') || ' ' || id) OR total IS DISTINCT FROM price * qty"));
        Assert.True(await s.Replica.ScalarAsync<long>("SELECT count(*) FROM priced") >= 45);
    }

    [Fact]
    public async Task Truncate_of_several_tables_cascade_and_restart_identity()
    {
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE parent (id bigserial PRIMARY KEY, name text);
            CREATE TABLE child (id bigserial PRIMARY KEY, parent_id bigint REFERENCES parent, note text);
            CREATE TABLE other (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text);
            CREATE TABLE untouched (id integer PRIMARY KEY);
            """);
        const string fill = """
            INSERT INTO parent (name) SELECT 'p' || g FROM generate_series(1, 20) g;
            INSERT INTO child (parent_id, note) SELECT id, 'c' FROM parent;
            INSERT INTO other (v) SELECT 'o' || g FROM generate_series(1, 20) g;
            """;
        await s.Origin.ExecuteAsync(fill + "INSERT INTO untouched SELECT generate_series(1, 10);");
        await s.StartReplicationAsync("public.parent", "public.child", "public.other", "public.untouched");
        await s.AssertReplicatedAsync(("parent", 20), ("child", 20), ("other", 20), ("untouched", 10));
        // The replica's sequences move on their own (replicated rows carry their ids): only RESTART IDENTITY resets them.
        await s.Replica.ExecuteAsync("SELECT setval('parent_id_seq', 5000); SELECT setval(pg_get_serial_sequence('other', 'id'), 5000);");

        await s.Origin.ExecuteAsync("TRUNCATE parent, child");
        await s.Origin.ExecuteAsync(fill);
        await s.AssertReplicatedAsync(("parent", 20), ("child", 20), ("other", 40), ("untouched", 10));
        Assert.Equal(5000L, await s.Replica.ScalarAsync<long>("SELECT last_value FROM parent_id_seq"));

        await s.Origin.ExecuteAsync("TRUNCATE other, child RESTART IDENTITY");
        await s.AssertReplicatedAsync(("parent", 20), ("untouched", 10));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM other"));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM child"));
        Assert.Equal("(1,f)", await s.Replica.ScalarAsync<string>("SELECT (last_value, is_called)::text FROM other_id_seq"));
        Assert.Equal(5000L, await s.Replica.ScalarAsync<long>("SELECT last_value FROM parent_id_seq"));

        // CASCADE on the origin sends every table it emptied; in the middle of a transaction with other changes.
        await s.Origin.ExecuteAsync("BEGIN; INSERT INTO other (v) VALUES ('before'); INSERT INTO child (parent_id) SELECT min(id) FROM parent; TRUNCATE parent CASCADE; INSERT INTO parent (name) VALUES ('after'); COMMIT;");
        await s.AssertReplicatedAsync(("parent", 1), ("other", 1), ("untouched", 10));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM child"));
    }
}
