using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Navette.Apply;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Consistency;

/// <summary>A table of a subscription to compare: its key and compared columns as the origin has them.</summary>
internal sealed record CompareSubject(string Subscription, string From, string To, string OriginConnectionString, string TargetConnectionString,
    string Schema, string Table, string[] KeyColumns, string[] Columns, bool TargetWrites)
{
    public string Name => $"{Schema}.{Table}";
}

internal enum DifferenceKind { Missing, Extra, Different }

/// <summary>A row that differs: missing on the target, extra there, or different. <see cref="Key"/> holds the key values as text.</summary>
internal sealed record RowDifference(DifferenceKind Kind, string?[] Key)
{
    public string KeyText(IReadOnlyList<string> keyColumns) => string.Join(", ", keyColumns.Select((c, i) => $"{c}={Key[i] ?? "NULL"}"));
}

/// <summary>What comparing one table found.</summary>
internal sealed class TableComparison(CompareSubject subject)
{
    public CompareSubject Subject => subject;
    public long OriginRows { get; set; }
    public long Chunks { get; set; }
    public List<RowDifference> Differences { get; } = new();
    /// <summary>Ranges that changed under every attempt to compare them: neither identical nor known to differ.</summary>
    public int UnsettledRanges { get; set; }
    public string? Error { get; set; }
    public bool Identical => Error is null && UnsettledRanges == 0 && Differences.Count == 0;
    public int Count(DifferenceKind kind) => Differences.Count(d => d.Kind == kind);
}

/// <summary>
/// Compares a table between a subscription's origin and target while both keep working. For each key range, the
/// origin summarises its rows and writes a compare request in the same statement (so the request enters the stream
/// right after what the summary saw); the target's applier summarises the same range when the request arrives, and
/// writes the result. Ranges that differ are split until they are small enough to list row by row. The requests go
/// through several origin connections at once.
/// </summary>
internal sealed class InStreamComparer(CompareSubject subject, CompareOptions options, ILogger log)
{
    private sealed record Item(string?[]? Lower, string?[]? Upper, bool Detail, int Attempt, bool Confirming = false);

    private sealed record Summary(long Rows, long? Checksum, long? Checksum2, List<string?[]>? Keys, long[]? Hashes)
    {
        public bool SameAs(Summary other) => Rows == other.Rows && Checksum == other.Checksum && Checksum2 == other.Checksum2;
    }

    private readonly Guid _run = Guid.NewGuid();
    private int _chunk;
    private int _outstanding;
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>();
    private readonly ConcurrentBag<RowDifference> _differences = new();
    private int _unsettled;
    private long _chunksDone;
    private TargetTable? _originTable;

    public Guid Run => _run;

    public async Task<TableComparison> CompareAsync(Action<string>? progress, CancellationToken ct)
    {
        var result = new TableComparison(subject);
        try
        {
            await using var origin = await OpenAsync(subject.OriginConnectionString, ct);
            _originTable = await TargetTable.LoadAsync(origin, null, subject.Schema, subject.Table, ct)
                           ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.From}");
            result.OriginRows = await EstimateRowsAsync(origin, ct);
            var ranges = await PlanAsync(origin, result.OriginRows, ct);
            result.Chunks = ranges.Count;
            foreach (var (lower, upper) in ranges) Enqueue(new Item(lower, upper, Detail: false, Attempt: 0));
            var workers = Enumerable.Range(0, Math.Max(1, options.Parallel)).Select(_ => Task.Run(() => WorkerAsync(ct), ct)).ToList();
            using var timer = progress is null ? null : new Timer(_ => progress($"{subject.Name}: {Interlocked.Read(ref _chunksDone)} range(s) compared, {_differences.Count} difference(s) so far"),
                null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
            await Task.WhenAll(workers);
            result.Differences.AddRange(_differences.OrderBy(d => d.Kind).ThenBy(d => string.Join("\u001f", d.Key), StringComparer.Ordinal));
            result.UnsettledRanges = _unsettled;
        }
        catch (Exception e) when (e is NavetteException or NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
        {
            result.Error = e is NpgsqlException ? Daemon.SubscriptionWorker.Describe(e) : e.Message;
        }
        finally
        {
            await CleanUpAsync();
        }
        return result;
    }

    private void Enqueue(Item item)
    {
        Interlocked.Increment(ref _outstanding);
        _queue.Writer.TryWrite(item);
    }

    private void Finished()
    {
        Interlocked.Increment(ref _chunksDone);
        if (Interlocked.Decrement(ref _outstanding) == 0) _queue.Writer.TryComplete();
    }

    private async Task WorkerAsync(CancellationToken ct)
    {
        await using var origin = await OpenAsync(subject.OriginConnectionString, ct);
        await using var target = await OpenAsync(subject.TargetConnectionString, ct);
        await foreach (var item in _queue.Reader.ReadAllAsync(ct))
        {
            try
            {
                await ProcessAsync(origin, target, item, ct);
            }
            catch
            {
                _queue.Writer.TryComplete();
                throw;
            }
            Finished();
        }
    }

    private async Task ProcessAsync(NpgsqlConnection origin, NpgsqlConnection target, Item item, CancellationToken ct)
    {
        var chunk = Interlocked.Increment(ref _chunk);
        var ours = await RequestAsync(origin, chunk, item, ct);
        var theirs = await AwaitResultAsync(target, chunk, ct);
        if (theirs.Unsettled != 0)
        {
            // Changed by transactions the origin's summary could not see: a large range is split (the parts are less
            // likely to be written again meanwhile), a small one is asked for again.
            if (Math.Max(ours.Rows, theirs.Summary.Rows) > options.DetailRows)
            {
                await SplitAsync(origin, target, item, ours, theirs.Summary, ct);
                return;
            }
            if (item.Attempt + 1 >= options.MaxAttempts)
            {
                Interlocked.Increment(ref _unsettled);
                log.LogWarning("compare {Table}: a range changed under each of {Attempts} attempts to compare it; compare again when the writes calm down",
                    subject.Name, options.MaxAttempts);
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50 * (item.Attempt + 1)), ct);
            Enqueue(item with { Attempt = item.Attempt + 1 });
            return;
        }
        if (ours.SameAs(theirs.Summary)) return;
        if (!item.Detail)
        {
            var rows = Math.Max(ours.Rows, theirs.Summary.Rows);
            if (rows <= options.DetailRows)
            {
                Enqueue(item with { Detail = true, Attempt = 0 });
                return;
            }
            await SplitAsync(origin, target, item, ours, theirs.Summary, ct);
            return;
        }
        var found = Diff(ours, theirs.Summary);
        if (found.Count == 0) return;
        if (subject.TargetWrites && !item.Confirming)
        {
            // The target also takes writes of its own (a mesh): a difference must still be there a moment later.
            await Task.Delay(options.ConfirmDelay, ct);
            Enqueue(item with { Attempt = 0, Confirming = true });
            return;
        }
        foreach (var d in found) _differences.Add(d);
    }

    /// <summary>Cuts the range in parts, on the side that has the rows (the origin, unless the target holds rows the origin does not).</summary>
    private async Task SplitAsync(NpgsqlConnection origin, NpgsqlConnection target, Item item, Summary ours, Summary theirs, CancellationToken ct)
    {
        var rows = Math.Max(ours.Rows, theirs.Rows);
        var onOrigin = ours.Rows >= theirs.Rows;
        var table = onOrigin ? _originTable! : await TargetTable.LoadAsync(target, null, subject.Schema, subject.Table, ct) ?? _originTable!;
        var bounds = await BoundariesAsync(onOrigin ? origin : target, table, item.Lower, item.Upper, Math.Max(1, rows / options.SplitInto), ct);
        var lower = item.Lower;
        foreach (var b in bounds.Append(item.Upper))
        {
            Enqueue(new Item(lower, b, Detail: false, Attempt: 0));
            lower = b;
        }
    }

    private static List<RowDifference> Diff(Summary ours, Summary theirs)
    {
        var mine = new Dictionary<string, (string?[] Key, long Hash)>(StringComparer.Ordinal);
        for (var i = 0; i < ours.Keys!.Count; i++) mine[Join(ours.Keys[i])] = (ours.Keys[i], ours.Hashes![i]);
        var result = new List<RowDifference>();
        for (var i = 0; i < theirs.Keys!.Count; i++)
        {
            var key = Join(theirs.Keys[i]);
            if (!mine.Remove(key, out var m)) result.Add(new RowDifference(DifferenceKind.Extra, theirs.Keys[i]));
            else if (m.Hash != theirs.Hashes![i]) result.Add(new RowDifference(DifferenceKind.Different, m.Key));
        }
        result.AddRange(mine.Values.Select(m => new RowDifference(DifferenceKind.Missing, m.Key)));
        return result;
    }

    private static string Join(string?[] key) => string.Join("\u001f", key.Select(k => k ?? "\u0000"));

    /// <summary>Summarises the range on the origin and writes the request, in one statement: the request follows exactly what the summary saw.</summary>
    private async Task<Summary> RequestAsync(NpgsqlConnection origin, int chunk, Item item, CancellationToken ct)
    {
        var p = new SqlParameters();
        var summary = ChunkSql.Summary(_originTable!, subject.KeyColumns, subject.Columns, item.Lower, item.Upper, item.Detail, p);
        var sql = $"""
            WITH o AS ({summary}),
                 s AS (SELECT pg_current_snapshot() AS snap),
                 request AS (
                     INSERT INTO navette.compare_request (run, chunk, subscription, schema_name, table_name, key_columns, columns, lower_bound, upper_bound,
                                                          detail, row_count, snap_xmin, snap_xmax, snap_xip, snap_lsn)
                     SELECT {p.Text(_run.ToString())}::uuid, {p.Add(chunk, NpgsqlDbType.Integer)}, {p.Text(subject.Subscription)}, {p.Text(subject.Schema)},
                            {p.Text(subject.Table)}, {p.TextArray(subject.KeyColumns)}, {p.TextArray(subject.Columns)},
                            {(item.Lower is null ? "NULL" : p.TextArray(item.Lower))}, {(item.Upper is null ? "NULL" : p.TextArray(item.Upper))},
                            {p.Add(item.Detail, NpgsqlDbType.Boolean)}, o.n, pg_snapshot_xmin(s.snap), pg_snapshot_xmax(s.snap),
                            ARRAY(SELECT pg_snapshot_xip(s.snap)), pg_current_wal_lsn()
                       FROM o, s
                     RETURNING 1)
            SELECT o.n, o.c1, o.c2, o.ks, o.hs FROM o, request
            """;
        await using var cmd = new NpgsqlCommand(sql, origin);
        cmd.Parameters.AddRange(p.List.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return Read(r, 0, subject.KeyColumns.Length);
    }

    private async Task<(Summary Summary, int Unsettled)> AwaitResultAsync(NpgsqlConnection target, int chunk, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + options.ResultTimeout;
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            await using (var cmd = new NpgsqlCommand(
                "SELECT row_count, checksum, checksum2, keys, hashes, unsettled FROM navette.compare_result WHERE run = $1 AND chunk = $2", target))
            {
                cmd.Parameters.AddWithValue(_run);
                cmd.Parameters.AddWithValue(chunk);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                if (await r.ReadAsync(ct))
                    return (Read(r, 0, subject.KeyColumns.Length), r.GetInt32(5));
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException(
                    $"subscription {subject.Subscription}: node {subject.To} did not answer a compare request of {subject.Name} within {options.ResultTimeout.TotalSeconds:F0} s; " +
                    "the subscription must be streaming (is navette run running? see navette status for its lag)");
            await Task.Delay(delay, ct);
            if (delay < TimeSpan.FromMilliseconds(200)) delay *= 2;
        }
    }

    private static Summary Read(NpgsqlDataReader r, int first, int keyColumns)
    {
        var rows = r.GetInt64(first);
        long? c1 = r.IsDBNull(first + 1) ? null : r.GetInt64(first + 1);
        long? c2 = r.IsDBNull(first + 2) ? null : Convert.ToInt64(r.GetValue(first + 2));
        List<string?[]>? keys = null;
        long[]? hashes = null;
        if (!r.IsDBNull(first + 3))
        {
            keys = KeyRows(r.GetValue(first + 3), keyColumns);
            hashes = r.GetFieldValue<long[]>(first + 4);
        }
        return new Summary(rows, c1, c2, keys, hashes);
    }

    /// <summary>A text[][] of key values (one row per key) as Npgsql returns it; an empty array comes back one-dimensional.</summary>
    internal static List<string?[]> KeyRows(object value, int keyColumns)
    {
        var result = new List<string?[]>();
        if (value is Array { Rank: 2 } grid)
        {
            for (var i = 0; i < grid.GetLength(0); i++)
            {
                var key = new string?[keyColumns];
                for (var j = 0; j < keyColumns; j++) key[j] = grid.GetValue(i, j) as string;
                result.Add(key);
            }
        }
        return result;
    }

    private async Task<long> EstimateRowsAsync(NpgsqlConnection origin, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT CASE WHEN bool_or(c.reltuples < 0) THEN -1 ELSE coalesce(sum(c.reltuples), 0) END::int8
              FROM pg_partition_tree(to_regclass(format('%I.%I', $1::text, $2::text))) t JOIN pg_class c ON c.oid = t.relid AND c.relkind <> 'p'
            """, origin);
        cmd.Parameters.AddWithValue(subject.Schema);
        cmd.Parameters.AddWithValue(subject.Table);
        var estimate = (long)(await cmd.ExecuteScalarAsync(ct))!;
        if (estimate >= 0) return estimate;
        // Never analyzed: counted.
        await using var count = new NpgsqlCommand($"SELECT count(*) FROM {_originTable!.QualifiedName}", origin);
        return (long)(await count.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Key ranges of about ChunkRows rows each, covering every key (the first and last are open-ended).</summary>
    private async Task<List<(string?[]? Lower, string?[]? Upper)>> PlanAsync(NpgsqlConnection origin, long estimate, CancellationToken ct)
    {
        List<string?[]> bounds;
        if (estimate <= options.ChunkRows * 2L)
            bounds = [];
        else if (estimate <= options.ExactPlanningRows)
            bounds = await BoundariesAsync(origin, _originTable!, null, null, options.ChunkRows, ct);
        else
        {
            // A sample of the pages gives boundaries near enough: ranges only need to be of roughly even size.
            const int samplesPerChunk = 20;
            var percent = Math.Min(100.0, 100.0 * samplesPerChunk * estimate / options.ChunkRows / estimate);
            var p = new SqlParameters();
            await using var cmd = new NpgsqlCommand(ChunkSql.SampledKeys(_originTable!, subject.KeyColumns, percent, p), origin);
            cmd.Parameters.AddRange(p.List.ToArray());
            var sampled = new List<string?[]>();
            await using (var r = await cmd.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) sampled.Add(r.GetFieldValue<string?[]>(0));
            bounds = sampled.Where((_, i) => i % samplesPerChunk == samplesPerChunk - 1).ToList();
        }
        var ranges = new List<(string?[]?, string?[]?)>();
        string?[]? lower = null;
        foreach (var b in bounds)
        {
            ranges.Add((lower, b));
            lower = b;
        }
        ranges.Add((lower, null));
        return ranges;
    }

    private async Task<List<string?[]>> BoundariesAsync(NpgsqlConnection conn, TargetTable table, string?[]? lower, string?[]? upper, long rowsPerPart, CancellationToken ct)
    {
        var p = new SqlParameters();
        await using var cmd = new NpgsqlCommand(ChunkSql.Boundaries(table, subject.KeyColumns, lower, upper, rowsPerPart, p), conn);
        cmd.Parameters.AddRange(p.List.ToArray());
        var result = new List<string?[]>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add(r.GetFieldValue<string?[]>(0));
        // The last boundary would start an empty range only when it is the range's last key; harmless either way.
        return result;
    }

    private async Task CleanUpAsync()
    {
        foreach (var (cs, sql) in new[]
                 {
                     (subject.OriginConnectionString, "DELETE FROM navette.compare_request WHERE run = $1"),
                     (subject.TargetConnectionString, "DELETE FROM navette.compare_result WHERE run = $1"),
                 })
        {
            try
            {
                await using var conn = await OpenAsync(cs, CancellationToken.None);
                await using var cmd = new NpgsqlCommand(sql, conn);
                cmd.Parameters.AddWithValue(_run);
                await cmd.ExecuteNonQueryAsync();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                log.LogDebug("compare {Table}: could not clean up run {Run}: {Error}", subject.Name, _run, e.Message);
            }
        }
    }

    internal static async Task<NpgsqlConnection> OpenAsync(string connectionString, CancellationToken ct)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString)
        {
            Options = Capture.ChangeStream.SessionOptions,
            ApplicationName = "navette_compare",
            Pooling = false,
            CommandTimeout = 0,
        }.ConnectionString);
        await conn.OpenAsync(ct);
        return conn;
    }
}

/// <summary>How compare cuts and checks tables.</summary>
internal sealed record CompareOptions
{
    /// <summary>Rows per range of the first pass.</summary>
    public int ChunkRows { get; init; } = 10_000;
    /// <summary>A differing range of at most this many rows is listed row by row; a larger one is split.</summary>
    public int DetailRows { get; init; } = 1_000;
    public int SplitInto { get; init; } = 10;
    /// <summary>Requests in flight at once, per table.</summary>
    public int Parallel { get; init; } = 4;
    /// <summary>Tables up to this many rows are cut exactly; larger ones from a sample of their pages.</summary>
    public long ExactPlanningRows { get; init; } = 1_000_000;
    public int MaxAttempts { get; init; } = 8;
    public TimeSpan ResultTimeout { get; init; } = TimeSpan.FromSeconds(120);
    public TimeSpan ConfirmDelay { get; init; } = TimeSpan.FromSeconds(1);
}
