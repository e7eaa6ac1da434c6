using System.Globalization;
using Navette.Apply;
using Navette.Capture;
using Navette.Daemon;
using NpgsqlTypes;

namespace Navette.Benchmarks;

/// <summary>One row of a transaction as Npgsql's pgoutput reader hands it over: column values already decoded to text.</summary>
internal sealed record DecodedChange(ChangeKind Kind, SourceRelation Relation, string?[] Values);

internal sealed record DecodedTransaction(uint Xid, NpgsqlLogSequenceNumber CommitLsn, NpgsqlLogSequenceNumber EndLsn, DateTime CommitTime, DecodedChange[] Changes);

/// <summary>
/// A batch as the apply loop takes it from the stream (as many transactions as <see cref="SubscriptionWorker"/> takes at
/// most), with the target tables it is written to. Values are what pgoutput prints for these types with Navette's
/// session settings.
/// </summary>
internal sealed class Workload
{
    private const int TransactionsPerBatch = SubscriptionWorker.MaxTransactionsPerBatch;

    public required DecodedTransaction[] Decoded { get; init; }
    public required List<SourceTransaction> Transactions { get; init; }
    public required Dictionary<SourceRelation, TargetTable> Targets { get; init; }

    public static Workload Named(string name) => name switch
    {
        "tpcb" => PgbenchTpcB(),
        "inserts" => InsertOnly(),
        _ => throw new ArgumentException($"no workload {name}", nameof(name)),
    };

    /// <summary>
    /// pgbench's TPC-B at scale 50 (as bench/run.sh): per transaction an UPDATE of a random account, teller and branch and
    /// an INSERT into pgbench_history, which has no key and is REPLICA IDENTITY FULL. 50 branches and 500 tellers, so
    /// most of their updates in a batch hit a row updated before: what compaction folds.
    /// </summary>
    private static Workload PgbenchTpcB()
    {
        const int scale = 50;
        var accounts = Relation(1, "pgbench_accounts", [("aid", "int4"), ("bid", "int4"), ("abalance", "int4"), ("filler", "bpchar")], [0]);
        var tellers = Relation(2, "pgbench_tellers", [("tid", "int4"), ("bid", "int4"), ("tbalance", "int4"), ("filler", "bpchar")], [0]);
        var branches = Relation(3, "pgbench_branches", [("bid", "int4"), ("bbalance", "int4"), ("filler", "bpchar")], [0]);
        var history = Relation(4, "pgbench_history",
            [("tid", "int4"), ("bid", "int4"), ("aid", "int4"), ("delta", "int4"), ("mtime", "timestamp"), ("filler", "bpchar")], []);

        var random = new Random(42);
        // pgbench -i loads accounts with an empty filler, which char(84) pads; tellers and branches with none.
        var accountFiller = new string(' ', 84);
        var tellerBalances = new int[10 * scale + 1];
        var branchBalances = new int[scale + 1];
        var start = new DateTime(2026, 11, 21, 10, 0, 0, DateTimeKind.Utc);
        var decoded = new DecodedTransaction[TransactionsPerBatch];
        for (var t = 0; t < decoded.Length; t++)
        {
            var aid = random.Next(1, 100_000 * scale + 1);
            var tid = random.Next(1, 10 * scale + 1);
            var bid = random.Next(1, scale + 1);
            var delta = random.Next(-5000, 5001);
            var commitTime = start.AddTicks(t * 5_000L + random.Next(1000));
            tellerBalances[tid] += delta;
            branchBalances[bid] += delta;
            decoded[t] = Transaction(t, commitTime,
                new DecodedChange(ChangeKind.Update, accounts, [Int(aid), Int((aid - 1) / 100_000 + 1), Int(random.Next(-50_000, 50_000)), accountFiller]),
                new DecodedChange(ChangeKind.Update, tellers, [Int(tid), Int((tid - 1) / 10 + 1), Int(tellerBalances[tid]), null]),
                new DecodedChange(ChangeKind.Update, branches, [Int(bid), Int(branchBalances[bid]), null]),
                new DecodedChange(ChangeKind.Insert, history,
                    [Int(tid), Int(bid), Int(aid), Int(delta), commitTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture), null]));
        }
        return Build(decoded, [accounts, tellers, branches, history]);
    }

    /// <summary>An order-entry load that only inserts: order lines, as many per transaction (10) as fill the batch to the worker's change limit.</summary>
    private static Workload InsertOnly()
    {
        var lines = Relation(1, "order_lines",
            [("id", "int8"), ("order_id", "int8"), ("product_id", "int4"), ("quantity", "int4"), ("price", "numeric"), ("note", "text"), ("created_at", "timestamptz")], [0]);
        var random = new Random(42);
        var start = new DateTime(2026, 11, 21, 10, 0, 0, DateTimeKind.Utc);
        var decoded = new DecodedTransaction[TransactionsPerBatch];
        long id = 1_000_000;
        for (var t = 0; t < decoded.Length; t++)
        {
            var commitTime = start.AddTicks(t * 5_000L + random.Next(1000));
            var created = commitTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";
            var changes = new DecodedChange[SubscriptionWorker.MaxChangesPerBatch / TransactionsPerBatch];
            for (var l = 0; l < changes.Length; l++)
            {
                var price = (random.Next(100, 100_000) / 100m).ToString("0.00", CultureInfo.InvariantCulture);
                var note = random.Next(4) == 0 ? $"gift wrap, deliver after {random.Next(8, 18)}:00" : null;
                changes[l] = new DecodedChange(ChangeKind.Insert, lines,
                    [Long(id++), Long(500_000 + t), Int(random.Next(1, 50_000)), Int(random.Next(1, 10)), price, note, created]);
            }
            decoded[t] = Transaction(t, commitTime, changes);
        }
        return Build(decoded, [lines]);
    }

    /// <summary>
    /// What <see cref="ChangeStream"/> builds from one decoded transaction: a <see cref="RowImage"/> and a
    /// <see cref="RowChange"/> per row (these workloads send inserts and updates that keep the key, so new rows only),
    /// then the <see cref="SourceTransaction"/>.
    /// </summary>
    public static SourceTransaction Materialise(DecodedTransaction tx)
    {
        var changes = new List<RowChange>();
        long bytes = 0;
        foreach (var change in tx.Changes)
        {
            var row = new RowImageBuilder(change.Values.Length);
            foreach (var value in change.Values)
            {
                if (value is null) row.AddNull();
                else row.Add(value);
            }
            var image = row.Build();
            bytes += image.ApproximateBytes;
            changes.Add(new RowChange { Kind = change.Kind, Relation = change.Relation, New = image });
        }
        return new SourceTransaction
        {
            Xid = tx.Xid, CommitLsn = tx.CommitLsn, EndLsn = tx.EndLsn, CommitTime = tx.CommitTime, Changes = changes, ApproximateBytes = bytes,
        };
    }

    private static Workload Build(DecodedTransaction[] decoded, SourceRelation[] relations) => new()
    {
        Decoded = decoded,
        Transactions = decoded.Select(Materialise).ToList(),
        Targets = relations.ToDictionary(r => r, Target),
    };

    private static DecodedTransaction Transaction(int index, DateTime commitTime, params DecodedChange[] changes)
    {
        var lsn = 0x1_0000_0000UL + (ulong)index * 600;
        return new DecodedTransaction((uint)(10_000 + index), new NpgsqlLogSequenceNumber(lsn), new NpgsqlLogSequenceNumber(lsn + 48), commitTime, changes);
    }

    private static SourceRelation Relation(uint id, string name, (string Name, string Type)[] columns, int[] key) => new()
    {
        Id = id, Schema = "public", Name = name,
        Columns = columns.Select(c => c.Name).ToArray(),
        TypeOids = columns.Select(c => TypeOids[c.Type]).ToArray(),
        TypeMods = columns.Select(_ => -1).ToArray(),
        KeyColumns = key, IdentityFull = key.Length == 0,
    };

    /// <summary>The target table as <see cref="TargetTable.LoadAsync"/> would describe it for the same columns.</summary>
    private static TargetTable Target(SourceRelation rel)
    {
        var columns = new Dictionary<string, TargetColumn>(StringComparer.Ordinal);
        for (var i = 0; i < rel.Columns.Length; i++)
        {
            var type = TypeOids.Single(t => t.Value == rel.TypeOids[i]).Key;
            columns[rel.Columns[i]] = new TargetColumn(
                Sql.Qualified("pg_catalog", type), Sql.Qualified("pg_catalog", OutputFunctions.GetValueOrDefault(type, type + "out")),
                $"OPERATOR({Sql.Ident("pg_catalog")}.=)");
        }
        return new TargetTable { Schema = rel.Schema, Name = rel.Name, IsPartitioned = false, Columns = columns };
    }

    private static readonly Dictionary<string, uint> TypeOids = new()
    {
        ["int4"] = 23, ["int8"] = 20, ["text"] = 25, ["bpchar"] = 1042, ["numeric"] = 1700, ["timestamp"] = 1114, ["timestamptz"] = 1184,
    };

    private static readonly Dictionary<string, string> OutputFunctions = new()
    {
        ["numeric"] = "numeric_out", ["timestamp"] = "timestamp_out", ["timestamptz"] = "timestamptz_out",
    };

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Long(long value) => value.ToString(CultureInfo.InvariantCulture);
}
