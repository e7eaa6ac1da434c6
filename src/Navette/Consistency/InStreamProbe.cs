using Navette.Apply;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Consistency;

/// <summary>
/// Compares a range while both nodes keep working: the origin summarises it and writes a compare request in the same
/// statement, so the request enters the stream right after what the summary saw; the target's applier summarises the
/// same range when the request arrives and writes the result, which this reads back.
/// </summary>
internal sealed class InStreamProbe : RangeProbe
{
    private readonly Guid _run;
    private readonly Func<int> _nextChunk;
    private readonly TimeSpan _timeout;

    private InStreamProbe(CompareSubject subject, CompareOptions options, NpgsqlConnection origin, NpgsqlConnection target, TargetTable originTable,
        TargetTable? targetTable, Guid run, Func<int> nextChunk)
        : base(subject, options, origin, target, originTable, targetTable)
    {
        _run = run;
        _nextChunk = nextChunk;
        _timeout = options.ResultTimeout;
    }

    public static async Task<IRangeProbe> OpenAsync(CompareSubject subject, CompareOptions options, Guid run, Func<int> nextChunk, CancellationToken ct)
    {
        var origin = await OpenAsync(subject.OriginConnectionString, ct);
        var target = await OpenAsync(subject.TargetConnectionString, ct);
        await Markers.ResultSignal.ListenAsync(target, ct);
        var originTable = await TargetTable.LoadAsync(origin, null, subject.Schema, subject.Table, ct)
                          ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.From}");
        var targetTable = await TargetTable.LoadAsync(target, null, subject.Schema, subject.Table, ct);
        return new InStreamProbe(subject, options, origin, target, originTable, targetTable, run, nextChunk);
    }

    public override async Task<(RangeSummary Origin, RangeSummary Target, int Unsettled)> ProbeAsync(string?[]? lower, string?[]? upper,
        IReadOnlyList<string?[]> innerBounds, bool detail, IReadOnlyList<int>? wanted, CancellationToken ct)
    {
        var chunk = _nextChunk();
        var ours = await RequestAsync(chunk, lower, upper, innerBounds, detail, wanted, ct);
        var (theirs, unsettled) = await AwaitResultAsync(chunk, detail, ct);
        return (ours, theirs, unsettled);
    }

    private async Task<RangeSummary> RequestAsync(int chunk, string?[]? lower, string?[]? upper, IReadOnlyList<string?[]> innerBounds, bool detail, IReadOnlyList<int>? wanted, CancellationToken ct)
    {
        var p = new SqlParameters();
        var summary = detail
            ? ChunkSql.Detail(OriginTable, Subject.KeyColumns, Subject.Columns, TextColumns, lower, upper, innerBounds, wanted, p)
            : ChunkSql.Buckets(OriginTable, Subject.KeyColumns, Subject.Columns, TextColumns, lower, upper, innerBounds, p);
        var rowCount = detail ? "o.n" : "(SELECT coalesce(sum(x), 0) FROM unnest(o.bn) AS x)";
        var sql = $"""
            WITH o AS ({summary}),
                 s AS (SELECT pg_current_snapshot() AS snap),
                 request AS (
                     INSERT INTO navette.compare_request (run, chunk, subscription, schema_name, table_name, key_columns, columns, text_columns,
                                                          lower_bound, upper_bound, bucket_bounds, wanted_buckets, detail, row_count, snap_xmin, snap_xmax, snap_xip, snap_lsn)
                     SELECT {p.Text(_run.ToString())}::uuid, {p.Add(chunk, NpgsqlDbType.Integer)}, {p.Text(Subject.Subscription)}, {p.Text(Subject.Schema)},
                            {p.Text(Subject.Table)}, {p.TextArray(Subject.KeyColumns)}, {p.TextArray(Subject.Columns)},
                            {p.Add(TextColumns, NpgsqlDbType.Array | NpgsqlDbType.Boolean)},
                            {(lower is null ? "NULL" : p.TextArray(lower))}, {(upper is null ? "NULL" : p.TextArray(upper))},
                            {(innerBounds.Count == 0 ? "NULL" : p.TextArray(innerBounds.SelectMany(b => b)))},
                            {(wanted is null ? "NULL" : p.Add(wanted.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Integer))},
                            {p.Add(detail, NpgsqlDbType.Boolean)}, {rowCount}, pg_snapshot_xmin(s.snap), pg_snapshot_xmax(s.snap),
                            ARRAY(SELECT pg_snapshot_xip(s.snap)), pg_current_wal_lsn()
                       FROM o, s
                     RETURNING 1)
            SELECT o.* FROM o, request
            """;
        await using var cmd = new NpgsqlCommand(sql, Origin);
        cmd.Parameters.AddRange(p.List.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return detail ? RangeSummary.ReadDetail(r, 0, Subject.KeyColumns.Length) : RangeSummary.ReadBuckets(r, 0);
    }

    private async Task<(RangeSummary Summary, int Unsettled)> AwaitResultAsync(int chunk, bool detail, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + _timeout;
        var sql = detail
            ? "SELECT row_count, keys, hashes, unsettled FROM navette.compare_result WHERE run = $1 AND chunk = $2"
            : "SELECT buckets, bucket_rows, bucket_hashes, unsettled FROM navette.compare_result WHERE run = $1 AND chunk = $2";
        while (true)
        {
            await using (var cmd = new NpgsqlCommand(sql, Target))
            {
                cmd.Parameters.AddWithValue(_run);
                cmd.Parameters.AddWithValue(chunk);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                if (await r.ReadAsync(ct))
                    return detail
                        ? (RangeSummary.ReadDetail(r, 0, Subject.KeyColumns.Length), r.GetInt32(3))
                        : (RangeSummary.ReadBuckets(r, 0), r.GetInt32(3));
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException(
                    $"subscription {Subject.Subscription}: node {Subject.To} did not answer a compare request of {Subject.Name} within {_timeout.TotalSeconds:F0} s; " +
                    "the subscription must be streaming (is navette run running? see navette status for its lag)");
            await Markers.ResultSignal.WaitAsync(Target, ct);
        }
    }

    /// <summary>Deletes a run's requests on the origin and results on the target.</summary>
    public static async Task CleanUpAsync(CompareSubject subject, Guid run, string requests, string results)
    {
        foreach (var (cs, sql) in new[]
                 {
                     (subject.OriginConnectionString, $"DELETE FROM navette.{requests} WHERE run = $1"),
                     (subject.TargetConnectionString, $"DELETE FROM navette.{results} WHERE run = $1"),
                 })
        {
            try
            {
                await using var conn = await OpenAsync(cs, CancellationToken.None);
                await using var cmd = new NpgsqlCommand(sql, conn);
                cmd.Parameters.AddWithValue(run);
                await cmd.ExecuteNonQueryAsync();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // Left behind: harmless rows, removed by the next run's clean-up of its own only; say nothing louder.
                _ = e;
            }
        }
    }
}
