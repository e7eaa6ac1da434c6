using BenchmarkDotNet.Attributes;
using Navette.Apply;
using Navette.Capture;

namespace Navette.Benchmarks;

/// <summary>
/// What <see cref="ApplyWriter"/> computes for one batch before anything goes on the wire: the net change per row
/// (<see cref="BatchCompactor"/>), then the statements and their parameters (<see cref="RowStatements"/>, with the SQL
/// texts of <see cref="SetSqlBuilder"/> and <see cref="ChangeSqlBuilder"/>).
/// </summary>
public class BatchBuildingBenchmarks
{
    private Workload _workload = null!;
    private List<RowChange> _compacted = [];
    private RowStatements _warm = null!;

    [Params("tpcb", "inserts")]
    public string Batch { get; set; } = "tpcb";

    [GlobalSetup]
    public void Setup()
    {
        _workload = Workload.Named(Batch);
        _compacted = BatchCompactor.Compact(_workload.Transactions, out _);
        _warm = new RowStatements("bench");
        Statements(_warm);
        foreach (var tx in _workload.Transactions) Statements(_warm, tx.Changes);
    }

    [Benchmark]
    public object Compact() => BatchCompactor.Compact(_workload.Transactions, out _);

    /// <summary>A running subscription: every SQL text is already cached, only parameters are built.</summary>
    [Benchmark]
    public int StatementsWarm() => Statements(_warm);

    /// <summary>A session's first batch: the SQL texts are built too.</summary>
    [Benchmark]
    public int StatementsCold() => Statements(new RowStatements("bench"));

    /// <summary>
    /// The same transactions applied one per target transaction, as when the stream is slow (a batch is what the
    /// channel holds, often one transaction) or with conflict handling: no compaction, runs end with the transaction.
    /// </summary>
    [Benchmark]
    public int StatementsPerTransaction()
    {
        var parameters = 0;
        foreach (var tx in _workload.Transactions) parameters += Statements(_warm, tx.Changes);
        return parameters;
    }

    private int Statements(RowStatements statements) => Statements(statements, _compacted);

    /// <summary>Walks the changes as ApplyWriter does; returns the number of parameters bound.</summary>
    private int Statements(RowStatements statements, IReadOnlyList<RowChange> changes)
    {
        var parameters = 0;
        for (var i = 0; i < changes.Count; i++)
        {
            var change = changes[i];
            if (statements.Next(changes, i, _workload.Targets[change.Relation], sets: true) is not { } statement) continue;
            parameters += statement.Parameters.Length;
            i += statement.Rows - 1;
        }
        return parameters;
    }
}
