using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>One very large transaction, thousands of tiny ones, and transactions spanning tables tied by foreign keys.</summary>
public sealed class VolumeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_200k_row_transaction_and_5000_single_row_commits_arrive_intact()
    {
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE bulk (id integer PRIMARY KEY, v text, n numeric, at timestamptz);
            CREATE TABLE tiny (id integer PRIMARY KEY, v text, touched integer NOT NULL DEFAULT 0);
            """);
        await s.StartReplicationAsync("public.bulk", "public.tiny");

        var clock = Stopwatch.StartNew();
        await s.Origin.ExecuteAsync("""
            BEGIN;
            INSERT INTO bulk SELECT g, md5(g::text), g / 7.0, '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 200000) g;
            UPDATE bulk SET v = upper(v) WHERE id % 10 = 0;
            DELETE FROM bulk WHERE id % 100 = 0;
            COMMIT;
            """);
        // Each loop iteration commits: 5000 transactions of one insert, with an update or a delete of an earlier row in between.
        await s.Origin.ExecuteAsync("""
            DO $$
            BEGIN
              FOR i IN 1..5000 LOOP
                INSERT INTO tiny (id, v) VALUES (i, 'row ' || i);
                COMMIT;
                IF i % 10 = 0 THEN UPDATE tiny SET touched = touched + 1, v = v || '!' WHERE id = i - 5; COMMIT; END IF;
                IF i % 25 = 0 THEN DELETE FROM tiny WHERE id = i - 3; COMMIT; END IF;
              END LOOP;
            END $$;
            """);
        output.WriteLine($"origin wrote in {clock.Elapsed.TotalSeconds:F1} s");
        await s.AssertReplicatedAsync(("bulk", 198_000), ("tiny", 4800));
        output.WriteLine($"replicated and compared in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(198_000L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM bulk"));
        Assert.Equal(4800L, await s.Replica.ScalarAsync<long>("SELECT count(*) FROM tiny"));
    }

    [Fact]
    public async Task Tables_with_the_maximum_number_of_columns_replicate()
    {
        // 1600 columns: a multi-row INSERT must stay under the 65535 parameters of one statement, and a REPLICA
        // IDENTITY FULL change binds every column twice.
        var columns = Enumerable.Range(1, 1599).Select(i => $"c{i}").ToList();
        await using var s = await ApplyScenario.StartAsync(output, $"""
            CREATE TABLE wide (id integer PRIMARY KEY, {string.Join(", ", columns.Select(c => c + " integer"))});
            CREATE TABLE wide_full ({string.Join(", ", columns.Select(c => c + " integer"))}, note text);
            ALTER TABLE wide_full REPLICA IDENTITY FULL;
            """);
        var values = string.Join(", ", columns.Select((c, i) => i % 3 == 0 ? "NULL" : $"g + {i}"));
        var insert = $"INSERT INTO wide SELECT g, {values} FROM generate_series({{0}}, {{1}}) g; INSERT INTO wide_full SELECT {values}, 'n' FROM generate_series({{0}}, {{1}}) g;";
        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, insert, 1, 100));
        await s.StartReplicationAsync("public.wide", "public.wide_full");
        await s.Origin.ExecuteAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, insert, 101, 300));
        await s.Origin.ExecuteAsync("UPDATE wide SET c5 = -c5, c1599 = NULL WHERE id % 2 = 0; UPDATE wide_full SET note = 'changed', c1 = 0 WHERE c2 % 3 = 0; DELETE FROM wide_full WHERE c2 % 5 = 0;");
        await s.AssertReplicatedAsync(("wide", 300), ("wide_full", 200));
    }

    [Fact]
    public async Task Transactions_across_tables_with_foreign_keys_apply_in_any_order()
    {
        // Foreign keys on both nodes; the origin's are deferred so a transaction may write children first.
        await using var s = await ApplyScenario.StartAsync(output, """
            CREATE TABLE customer (id integer PRIMARY KEY, name text NOT NULL);
            CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL
                REFERENCES customer ON DELETE CASCADE ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED, placed date);
            CREATE TABLE order_line (order_id integer REFERENCES orders ON DELETE CASCADE ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED,
                line integer, qty integer CHECK (qty > 0), PRIMARY KEY (order_id, line));
            """);
        await s.Origin.ExecuteAsync("""
            INSERT INTO customer SELECT g, 'c' || g FROM generate_series(1, 50) g;
            INSERT INTO orders SELECT g, 1 + g % 50, '2024-01-01'::date + g FROM generate_series(1, 200) g;
            INSERT INTO order_line SELECT o, l, l FROM generate_series(1, 200) o, generate_series(1, 3) l;
            """);
        await s.StartReplicationAsync("public.customer", "public.orders", "public.order_line");

        await s.Origin.ExecuteAsync("""
            BEGIN;
            INSERT INTO order_line SELECT o, l, 1 FROM generate_series(1001, 1100) o, generate_series(1, 2) l;
            INSERT INTO orders SELECT g, 1000 + g % 7, '2025-01-01' FROM generate_series(1001, 1100) g;
            INSERT INTO customer SELECT 1000 + g, 'new ' || g FROM generate_series(0, 6) g;
            UPDATE orders SET placed = placed + 1 WHERE id % 2 = 0;
            UPDATE order_line SET qty = qty + 1 WHERE line = 1;
            COMMIT;
            """);
        // Cascades on the origin reach the replica as explicit changes, which its own cascades (not fired while
        // applying) must not duplicate or fight with.
        await s.Origin.ExecuteAsync("""
            BEGIN;
            DELETE FROM customer WHERE id % 10 = 0;
            UPDATE customer SET id = id + 5000 WHERE id % 10 = 1;
            UPDATE orders SET id = id + 5000 WHERE id % 9 = 0;
            DELETE FROM order_line WHERE line = 3 AND order_id % 4 = 0;
            COMMIT;
            """);
        await s.AssertReplicatedAsync(("customer", 50), ("orders", 250), ("order_line", 600));
        Assert.Equal(0L, await s.Replica.ScalarAsync<long>("""
            SELECT (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customer c WHERE c.id = o.customer_id))
                 + (SELECT count(*) FROM order_line l WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = l.order_id))
            """));
    }
}
