using Navette.Cli.Demo;
using Npgsql;
using NpgsqlTypes;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Infrastructure;

/// <summary>
/// A workload whose result proves exactly-once delivery. One writer appends to <c>ledger</c> with sequential
/// ids (1, 2, 3, ... without holes on the origin), moves the matching <c>accounts</c> counters in the same
/// transaction, and inserts, updates and deletes <c>scratch</c> rows. On replicas <c>ledger</c> has no unique
/// key, so a transaction applied twice shows up as duplicate ids instead of being refused, and a lost one as a
/// hole; the counters must always equal the sums of the ledger (transactions applied whole).
/// </summary>
internal static class LedgerWorkload
{
    public const string Tables = "public.ledger, public.accounts, public.scratch";
    public const int Accounts = 50;

    public const string OriginSchema = """
        CREATE TABLE public.ledger (id bigint PRIMARY KEY, account int NOT NULL, amount bigint NOT NULL, note text, at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE public.accounts (id int PRIMARY KEY, balance bigint NOT NULL, ops bigint NOT NULL);
        CREATE TABLE public.scratch (id bigint PRIMARY KEY, ledger_id bigint NOT NULL, payload text);
        """;

    /// <summary>The same tables without the ledger's key (a plain index keeps the replica's lookups fast).</summary>
    public const string ReplicaSchema = """
        CREATE TABLE public.ledger (id bigint NOT NULL, account int NOT NULL, amount bigint NOT NULL, note text, at timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ledger_id ON public.ledger (id);
        CREATE TABLE public.accounts (id int PRIMARY KEY, balance bigint NOT NULL, ops bigint NOT NULL);
        CREATE TABLE public.scratch (id bigint PRIMARY KEY, ledger_id bigint NOT NULL, payload text);
        """;

    /// <summary>Fills the origin with <paramref name="rows"/> ledger rows and consistent counters.</summary>
    public static async Task SeedAsync(LocalCluster origin, int rows)
    {
        await origin.ExecuteAsync($"""
            INSERT INTO ledger (id, account, amount, note)
              SELECT g, g % {Accounts}, g % 97 + 1, 'seed ' || md5(g::text) FROM generate_series(1, {rows}) g;
            INSERT INTO accounts (id, balance, ops)
              SELECT a, coalesce(sum(l.amount), 0), count(l.id) FROM generate_series(0, {Accounts - 1}) a LEFT JOIN ledger l ON l.account = a GROUP BY a;
            INSERT INTO scratch (id, ledger_id, payload) SELECT g, g, 'seed' FROM generate_series(1, least({rows}, 1000)) g;
            ANALYZE ledger, accounts, scratch;
            """);
    }

    /// <summary>Starts the single writer (ids continue from the origin's highest).</summary>
    public static WriteLoad Start(LocalCluster origin, double perSecond, ITestOutputHelper output, int seed = 7)
    {
        long next = 0;
        return WriteLoad.Start("ledger", origin.ConnectionString, async (conn, random, ct) =>
        {
            var count = random.Next(1, 4);
            var account = random.Next(Accounts);
            var first = next;
            await using var tx = await conn.BeginTransactionAsync(ct);
            await using var batch = new NpgsqlBatch(conn, tx);
            long total = 0;
            var ids = new long[count];
            var amounts = new long[count];
            for (var i = 0; i < count; i++)
            {
                ids[i] = first + i;
                amounts[i] = random.Next(1, 1000);
                total += amounts[i];
            }
            batch.BatchCommands.Add(Command("INSERT INTO ledger (id, account, amount, note) SELECT i, $2, a, 'tx' FROM unnest($1::bigint[], $3::bigint[]) AS u(i, a)",
                P(ids), P(account), P(amounts)));
            batch.BatchCommands.Add(Command("UPDATE accounts SET balance = balance + $1, ops = ops + $2 WHERE id = $3", P(total), P((long)count), P(account)));
            batch.BatchCommands.Add(Command("INSERT INTO scratch (id, ledger_id, payload) VALUES ($1, $1, $2) ON CONFLICT (id) DO UPDATE SET payload = excluded.payload",
                P(first), P(new string('s', random.Next(0, 200)))));
            batch.BatchCommands.Add(Command("UPDATE scratch SET payload = 'updated ' || ledger_id WHERE id = $1", P(first - 7)));
            batch.BatchCommands.Add(Command("DELETE FROM scratch WHERE id = $1", P(first - 15)));
            await batch.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
            next = first + count;
        }, perSecond, output, connected: async (conn, ct) =>
        {
            // Also after a failed commit whose outcome is unknown: the origin says where the ledger is.
            await using var cmd = new NpgsqlCommand("SELECT coalesce(max(id), 0) + 1 FROM ledger", conn);
            next = (long)(await cmd.ExecuteScalarAsync(ct))!;
        }, seed: seed);
    }

    /// <summary>
    /// Asserts the replica holds exactly the origin's ledger (no hole, no duplicate), counters that match it, and
    /// identical tables.
    /// </summary>
    public static async Task AssertIntactAsync(LocalCluster origin, LocalCluster replica, long minRows)
    {
        var o = await SummaryAsync(origin);
        var r = await SummaryAsync(replica);
        Assert.True(o.Count >= minRows, $"origin ledger has {o.Count} rows, expected at least {minRows}");
        Assert.True(o.Count == o.Distinct && o.Min == 1 && o.Max == o.Count, $"origin ledger is not gapless itself: {o}");
        Assert.True(r.Distinct == r.Count, $"replica ledger has duplicate ids: {r} (origin {o})");
        Assert.True(r.Min == 1 && r.Max == r.Count, $"replica ledger has a gap: {r} (origin {o})");
        Assert.Equal(o, r);
        Assert.True(r.Balance == r.Sum && r.Ops == r.Count, $"replica counters do not match its ledger (a transaction was applied in part): {r}");
        await TableCompare.AssertIdenticalAsync(origin, replica, "public.ledger", (int)minRows);
        await TableCompare.AssertIdenticalAsync(origin, replica, "public.accounts", Accounts);
        await TableCompare.AssertIdenticalAsync(origin, replica, "public.scratch", 1);
    }

    internal sealed record Summary(long Count, long Distinct, long Min, long Max, long Sum, long Balance, long Ops);

    public static async Task<Summary> SummaryAsync(LocalCluster node)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT count(*), count(DISTINCT id), coalesce(min(id), 0), coalesce(max(id), 0), coalesce(sum(amount), 0)::bigint,
                   (SELECT coalesce(sum(balance), 0)::bigint FROM accounts), (SELECT coalesce(sum(ops), 0)::bigint FROM accounts)
              FROM ledger
            """, conn);
        await using var r = await cmd.ExecuteReaderAsync();
        await r.ReadAsync();
        return new Summary(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6));
    }

    private static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var c = new NpgsqlBatchCommand(sql);
        c.Parameters.AddRange(parameters);
        return c;
    }

    private static NpgsqlParameter P(long v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Bigint };
    private static NpgsqlParameter P(int v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Integer };
    private static NpgsqlParameter P(string v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Text };
    private static NpgsqlParameter P(long[] v) => new() { Value = v, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint };
}
