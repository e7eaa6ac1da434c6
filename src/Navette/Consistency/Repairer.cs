using System.Text;
using Microsoft.Extensions.Logging;
using Navette.Apply;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Consistency;

/// <summary>What repairing one table did.</summary>
internal sealed record TableRepair(CompareSubject Subject, int Written, int Removed, List<string> Skipped);

/// <summary>
/// <c>navette repair</c>: makes a target match its origin on the rows a compare found different, and only those. The
/// origin reads the rows (or notes their absence) and writes them as a repair request in the same statement, so the
/// request enters the stream right after the state it carries; the target's applier writes them where the request
/// arrives. A row changed on the origin between that read and the request's commit is left to the stream (it carries
/// the newer version) and reported as skipped.
/// </summary>
internal sealed class Repairer(ILogger log)
{
    private const int RowsPerRequest = 500;

    public async Task<TableRepair> RepairAsync(TableComparison comparison, TimeSpan timeout, CancellationToken ct)
    {
        var subject = comparison.Subject;
        var run = Guid.NewGuid();
        var written = 0;
        var removed = 0;
        var skipped = new List<string>();
        await using var origin = await RangeProbe.OpenAsync(subject.OriginConnectionString, ct);
        await using var target = await RangeProbe.OpenAsync(subject.TargetConnectionString, ct);
        await Markers.ResultSignal.ListenAsync(target, ct);
        var table = await TargetTable.LoadAsync(origin, null, subject.Schema, subject.Table, ct)
                    ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.From}");
        try
        {
            var batch = 0;
            foreach (var keys in comparison.Differences.Select(d => d.Key).Chunk(RowsPerRequest))
            {
                batch++;
                await RequestAsync(origin, table, subject, run, batch, keys, ct);
                var (w, r, s) = await AwaitResultAsync(target, subject, run, batch, timeout, ct);
                written += w;
                removed += r;
                skipped.AddRange(s);
            }
        }
        finally
        {
            await InStreamProbe.CleanUpAsync(subject, run, "repair_request", "repair_result");
        }
        log.LogInformation("repair {Subscription} {Table}: {Written} row(s) written, {Removed} removed, {Skipped} left to the stream", subject.Subscription, subject.Name, written, removed, skipped.Count);
        return new TableRepair(subject, written, removed, skipped);
    }

    private static async Task RequestAsync(NpgsqlConnection origin, TargetTable table, CompareSubject subject, Guid run, int batch, string?[][] keys, CancellationToken ct)
    {
        var p = new SqlParameters();
        var k = subject.KeyColumns.Length;
        var unnest = string.Join(", ", Enumerable.Range(0, k).Select(i => p.TextArray(keys.Select(key => key[i]))));
        var match = string.Join(" AND ", subject.KeyColumns.Select((c, i) =>
            $"t.{Sql.Ident(c)} {table.Columns[c].EqualityOperator ?? "="} d.k{i}::{table.Columns[c].CastType}"));
        var sql = $"""
            WITH s AS (SELECT pg_current_snapshot() AS snap),
                 d AS (SELECT * FROM unnest({unnest}) WITH ORDINALITY AS d({string.Join(", ", Enumerable.Range(0, k).Select(i => "k" + i))}, ord)),
                 r AS (SELECT d.ord, t.ctid IS NOT NULL AS present,
                              ARRAY[{string.Join(", ", Enumerable.Range(0, k).Select(i => $"d.k{i}"))}] AS kv,
                              ARRAY[{string.Join(", ", subject.Columns.Select(c => $"t.{Sql.Ident(c)}::text"))}] AS vals
                         FROM d LEFT JOIN {table.OnlyName} AS t ON {match}),
                 request AS (
                     INSERT INTO navette.repair_request (run, batch, subscription, schema_name, table_name, key_columns, columns, keys, row_values, present,
                                                         snap_xmin, snap_xmax, snap_xip, snap_lsn)
                     SELECT {p.Text(run.ToString())}::uuid, {p.Add(batch, NpgsqlDbType.Integer)}, {p.Text(subject.Subscription)}, {p.Text(subject.Schema)},
                            {p.Text(subject.Table)}, {p.TextArray(subject.KeyColumns)}, {p.TextArray(subject.Columns)},
                            (SELECT array_agg(u.x ORDER BY r.ord, u.o) FROM r, unnest(r.kv) WITH ORDINALITY AS u(x, o)),
                            (SELECT coalesce(array_agg(u.x ORDER BY r.ord, u.o), ARRAY[]::text[]) FROM r, unnest(r.vals) WITH ORDINALITY AS u(x, o)),
                            (SELECT array_agg(r.present ORDER BY r.ord) FROM r),
                            pg_snapshot_xmin(s.snap), pg_snapshot_xmax(s.snap), ARRAY(SELECT pg_snapshot_xip(s.snap)), pg_current_wal_lsn()
                       FROM s
                     RETURNING 1)
            SELECT count(*) FROM request
            """;
        await using var cmd = new NpgsqlCommand(sql, origin);
        cmd.Parameters.AddRange(p.List.ToArray());
        await cmd.ExecuteScalarAsync(ct);
    }

    private static async Task<(int Written, int Removed, string[] Skipped)> AwaitResultAsync(NpgsqlConnection target, CompareSubject subject, Guid run, int batch,
        TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            await using (var cmd = new NpgsqlCommand("SELECT written, deleted, skipped FROM navette.repair_result WHERE run = $1 AND batch = $2", target))
            {
                cmd.Parameters.AddWithValue(run);
                cmd.Parameters.AddWithValue(batch);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                if (await r.ReadAsync(ct)) return (r.GetInt32(0), r.GetInt32(1), r.GetFieldValue<string[]>(2));
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"subscription {subject.Subscription}: node {subject.To} did not apply a repair of {subject.Name} within {timeout.TotalSeconds:F0} s; " +
                                           "the subscription must be streaming (is navette run running?)");
            await Markers.ResultSignal.WaitAsync(target, ct);
        }
    }

    /// <summary>
    /// <c>--sql FILE</c>: the statements that would repair the target, with the origin's rows as they are now, for review.
    /// Run later by hand, they may undo what the stream applied meanwhile; the in-stream repair does not.
    /// </summary>
    public static async Task WriteSqlAsync(TableComparison comparison, TextWriter w, CancellationToken ct)
    {
        var subject = comparison.Subject;
        await using var origin = await RangeProbe.OpenAsync(subject.OriginConnectionString, ct);
        var table = await TargetTable.LoadAsync(origin, null, subject.Schema, subject.Table, ct)
                    ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.From}");
        await w.WriteLineAsync($"-- repair of {subject.Name} on node {subject.To} from node {subject.From} (subscription {subject.Subscription}): " +
                               $"{comparison.Count(DifferenceKind.Missing)} missing, {comparison.Count(DifferenceKind.Extra)} extra, {comparison.Count(DifferenceKind.Different)} different");
        await w.WriteLineAsync("BEGIN;");
        await w.WriteLineAsync("SET LOCAL session_replication_role = replica;");
        var cast = subject.KeyColumns.Select(c => table.Columns[c].CastType).ToArray();
        foreach (var keys in comparison.Differences.Select(d => d.Key).Chunk(RowsPerRequest))
        {
            var tuple = $"({string.Join(", ", subject.KeyColumns.Select(Sql.Ident))})";
            var list = string.Join(",\n    ", keys.Select(key => "(" + string.Join(", ", key.Select((v, i) => Literal(v, cast[i]))) + ")"));
            await w.WriteLineAsync($"DELETE FROM {table.OnlyName} WHERE {tuple} IN (\n    {list});");
            var p = new SqlParameters();
            var match = string.Join(" AND ", subject.KeyColumns.Select((c, i) => $"t.{Sql.Ident(c)} = d.k{i}::{cast[i]}"));
            var unnest = string.Join(", ", subject.KeyColumns.Select((_, i) => p.TextArray(keys.Select(key => key[i]))));
            await using var cmd = new NpgsqlCommand(
                $"SELECT {string.Join(", ", subject.Columns.Select(c => $"t.{Sql.Ident(c)}::text"))} FROM unnest({unnest}) AS d({string.Join(", ", subject.KeyColumns.Select((_, i) => "k" + i))}) " +
                $"JOIN {table.OnlyName} AS t ON {match}", origin);
            cmd.Parameters.AddRange(p.List.ToArray());
            var rows = new List<string>();
            await using (var r = await cmd.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct))
                    rows.Add("(" + string.Join(", ", subject.Columns.Select((c, i) => Literal(r.IsDBNull(i) ? null : r.GetString(i), table.Columns[c].CastType))) + ")");
            if (rows.Count == 0) continue;
            var columns = string.Join(", ", subject.Columns.Select(Sql.Ident));
            var overriding = table.HasIdentityAlways ? " OVERRIDING SYSTEM VALUE" : "";
            await w.WriteLineAsync($"INSERT INTO {table.QualifiedName} ({columns}){overriding} VALUES\n    {string.Join(",\n    ", rows)};");
        }
        await w.WriteLineAsync("COMMIT;");
    }

    private static string Literal(string? value, string type) => value is null ? "NULL" : $"{Sql.Literal(value)}::{type}";
}
