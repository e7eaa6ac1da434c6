using Navette.Apply;
using Npgsql;

namespace Navette.Consistency;

/// <summary>
/// What the two ways of comparing share: a session on each node, the table as each node has it, and how ranges are
/// cut (exactly by numbering the keys, or from a sample of the pages for large tables).
/// </summary>
internal abstract class RangeProbe(CompareSubject subject, CompareOptions options, NpgsqlConnection origin, NpgsqlConnection target,
    TargetTable originTable, TargetTable? targetTable) : IRangeProbe
{
    protected CompareSubject Subject => subject;
    protected NpgsqlConnection Origin => origin;
    protected NpgsqlConnection Target => target;
    protected TargetTable OriginTable => originTable;
    protected TargetTable? TargetTableOrNull => targetTable;

    /// <summary>The transaction origin reads run in (the resync's snapshot), or null.</summary>
    protected virtual NpgsqlTransaction? OriginTransaction => null;

    public abstract Task<(RangeSummary Origin, RangeSummary Target, int Unsettled)> ProbeAsync(string?[]? lower, string?[]? upper, IReadOnlyList<string?[]> innerBounds,
        bool detail, IReadOnlyList<int>? wanted, CancellationToken ct);

    /// <summary>Columns hashed through their text: decided on the origin and sent to the target, so both hash alike.</summary>
    protected bool[] TextColumns => _textColumns ??= ChunkSql.TextColumns(originTable, subject.Columns);
    private bool[]? _textColumns;

    public async Task<List<string?[]>> BoundariesAsync(bool onOrigin, string?[]? lower, string?[]? upper, long rowsPerPart, CancellationToken ct)
    {
        var table = onOrigin || targetTable is null ? originTable : targetTable;
        var p = new SqlParameters();
        await using var cmd = new NpgsqlCommand(ChunkSql.Boundaries(table, subject.KeyColumns, lower, upper, rowsPerPart, p),
            onOrigin || targetTable is null ? origin : target, onOrigin ? OriginTransaction : null);
        cmd.Parameters.AddRange(p.List.ToArray());
        var result = new List<string?[]>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add(r.GetFieldValue<string?[]>(0));
        return result;
    }

    public async Task<(long Rows, List<string?[]> Bounds)> PlanAsync(long rowsPerPart, CancellationToken ct)
    {
        var estimate = await EstimateRowsAsync(ct);
        if (estimate <= rowsPerPart) return (estimate, []);
        if (IntegerKey)
            return (estimate, await EvenIntegerBoundsAsync(estimate, rowsPerPart, ct));
        if (estimate <= options.ExactPlanningRows) return (estimate, await BoundariesAsync(true, null, null, rowsPerPart, ct));
        // A row sample gives boundaries near enough: parts only need to be of roughly even size.
        const int samplesPerPart = 5;
        var percent = Math.Min(100.0, 100.0 * samplesPerPart / rowsPerPart);
        var p = new SqlParameters();
        await using var cmd = new NpgsqlCommand(ChunkSql.SampledKeys(originTable, subject.KeyColumns, percent, p), origin, OriginTransaction);
        cmd.Parameters.AddRange(p.List.ToArray());
        var sampled = new List<string?[]>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) sampled.Add(r.GetFieldValue<string?[]>(0));
        return (estimate, sampled.Where((_, i) => i % samplesPerPart == samplesPerPart - 1).ToList());
    }

    private bool IntegerKey => subject.KeyColumns.Length == 1 &&
        originTable.Columns[subject.KeyColumns[0]].CastType is "\"pg_catalog\".\"int2\"" or "\"pg_catalog\".\"int4\"" or "\"pg_catalog\".\"int8\"";

    /// <summary>A single integer key is cut by value from its minimum to its maximum (read from the index): no scan at all.</summary>
    private async Task<List<string?[]>> EvenIntegerBoundsAsync(long estimate, long rowsPerPart, CancellationToken ct)
    {
        var key = Sql.Ident(subject.KeyColumns[0]);
        await using var cmd = new NpgsqlCommand($"SELECT min({key})::int8, max({key})::int8 FROM {originTable.OnlyName}", origin, OriginTransaction);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct) || r.IsDBNull(0)) return [];
        var (min, max) = (r.GetInt64(0), r.GetInt64(1));
        var parts = Math.Max(1, (estimate + rowsPerPart - 1) / rowsPerPart);
        var step = Math.Max(1, (long)Math.Ceiling(((double)max - min + 1) / parts));
        var bounds = new List<string?[]>();
        for (var b = min + step; b <= max && b > min; b += step) bounds.Add([b.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return bounds;
    }

    private async Task<long> EstimateRowsAsync(CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            WITH r AS (SELECT to_regclass(format('%I.%I', $1::text, $2::text)) AS oid)
            SELECT CASE WHEN bool_or(c.reltuples < 0) THEN -1 ELSE coalesce(sum(c.reltuples), 0) END::int8
              FROM r, pg_class c
             WHERE c.relkind <> 'p' AND (c.oid = r.oid OR c.oid IN (SELECT t.relid FROM pg_partition_tree(r.oid) AS t))
            """, origin, OriginTransaction);
        cmd.Parameters.AddWithValue(subject.Schema);
        cmd.Parameters.AddWithValue(subject.Table);
        var estimate = (long)(await cmd.ExecuteScalarAsync(ct))!;
        if (estimate >= 0) return estimate;
        // Never analyzed: counted.
        await using var count = new NpgsqlCommand($"SELECT count(*) FROM {originTable.QualifiedName}", origin, OriginTransaction);
        return (long)(await count.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The range's summary on a node, by a plain read (in <paramref name="tx"/> when given).</summary>
    protected async Task<RangeSummary> SummarizeAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, TargetTable? table, string?[]? lower, string?[]? upper,
        IReadOnlyList<string?[]> innerBounds, bool detail, IReadOnlyList<int>? wanted, CancellationToken ct)
    {
        if (table is null || subject.Columns.Any(c => !table.Columns.ContainsKey(c)))
            return new RangeSummary(0, detail ? null : [], detail ? [] : null, detail ? [] : null);
        var p = new SqlParameters();
        var sql = detail
            ? ChunkSql.Detail(table, subject.KeyColumns, subject.Columns, TextColumns, lower, upper, innerBounds, wanted, p)
            : ChunkSql.Buckets(table, subject.KeyColumns, subject.Columns, TextColumns, lower, upper, innerBounds, p);
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.Parameters.AddRange(p.List.ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return detail ? RangeSummary.ReadDetail(r, 0, subject.KeyColumns.Length) : RangeSummary.ReadBuckets(r, 0);
    }

    public virtual async ValueTask DisposeAsync()
    {
        await origin.DisposeAsync();
        await target.DisposeAsync();
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
