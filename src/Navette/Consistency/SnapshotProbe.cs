using Navette.Apply;
using Npgsql;

namespace Navette.Consistency;

/// <summary>
/// Compares a range between the origin as of an exported snapshot (a new slot's consistent point) and a target that is
/// not being written (its subscription stopped): both reads are plain, and describe the same moment by construction.
/// </summary>
internal sealed class SnapshotProbe : RangeProbe
{
    private readonly NpgsqlTransaction _snapshot;

    private SnapshotProbe(CompareSubject subject, CompareOptions options, NpgsqlConnection origin, NpgsqlTransaction snapshot, NpgsqlConnection target,
        TargetTable originTable, TargetTable? targetTable)
        : base(subject, options, origin, target, originTable, targetTable)
    {
        _snapshot = snapshot;
    }

    protected override NpgsqlTransaction OriginTransaction => _snapshot;

    /// <summary>Opens a probe whose origin session reads under <paramref name="snapshotName"/> (imported while its exporter is still idle).</summary>
    public static async Task<IRangeProbe> OpenAsync(CompareSubject subject, CompareOptions options, string snapshotName, CancellationToken ct)
    {
        var origin = await OpenAsync(subject.OriginConnectionString, ct);
        var tx = await origin.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        await using (var cmd = new NpgsqlCommand($"SET TRANSACTION READ ONLY; SET TRANSACTION SNAPSHOT {Sql.Literal(snapshotName)}", origin, tx))
            await cmd.ExecuteNonQueryAsync(ct);
        var target = await OpenAsync(subject.TargetConnectionString, ct);
        var originTable = await TargetTable.LoadAsync(origin, tx, subject.Schema, subject.Table, ct)
                          ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.From}");
        var targetTable = await TargetTable.LoadAsync(target, null, subject.Schema, subject.Table, ct);
        return new SnapshotProbe(subject, options, origin, tx, target, originTable, targetTable);
    }

    public override async Task<(RangeSummary Origin, RangeSummary Target, int Unsettled)> ProbeAsync(string?[]? lower, string?[]? upper,
        IReadOnlyList<string?[]> innerBounds, bool detail, IReadOnlyList<int>? wanted, CancellationToken ct)
    {
        var ours = await SummarizeAsync(Origin, _snapshot, OriginTable, lower, upper, innerBounds, detail, wanted, ct);
        var theirs = await SummarizeAsync(Target, null, TargetTableOrNull, lower, upper, innerBounds, detail, wanted, ct);
        return (ours, theirs, 0);
    }

    /// <summary>The origin's rows of these keys under the snapshot: each key with its row's values, or null when the origin has no such row.</summary>
    public static async Task<List<(string?[] Key, string?[]? Row)>> ReadRowsAsync(NpgsqlConnection origin, NpgsqlTransaction snapshot, TargetTable table,
        CompareSubject subject, IReadOnlyList<string?[]> keys, CancellationToken ct)
    {
        var p = new SqlParameters();
        var k = subject.KeyColumns.Length;
        var unnest = string.Join(", ", Enumerable.Range(0, k).Select(i => p.TextArray(keys.Select(key => key[i]))));
        var match = string.Join(" AND ", subject.KeyColumns.Select((c, i) =>
            $"t.{Sql.Ident(c)} {table.Columns[c].EqualityOperator ?? "="} d.k{i}::{table.Columns[c].CastType}"));
        await using var cmd = new NpgsqlCommand(
            $"SELECT d.ord::int4, t.ctid IS NOT NULL, {string.Join(", ", subject.Columns.Select(c => $"t.{Sql.Ident(c)}::text"))} " +
            $"FROM unnest({unnest}) WITH ORDINALITY AS d({string.Join(", ", Enumerable.Range(0, k).Select(i => "k" + i))}, ord) " +
            $"LEFT JOIN {table.OnlyName} AS t ON {match} ORDER BY d.ord", origin, snapshot);
        cmd.Parameters.AddRange(p.List.ToArray());
        var result = new List<(string?[], string?[]?)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var key = keys[r.GetInt32(0) - 1];
            if (!r.GetBoolean(1)) { result.Add((key, null)); continue; }
            var row = new string?[subject.Columns.Length];
            for (var i = 0; i < row.Length; i++) row[i] = r.IsDBNull(i + 2) ? null : r.GetString(i + 2);
            result.Add((key, row));
        }
        return result;
    }
}
