using Microsoft.Extensions.Logging;
using Navette.Capture;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Apply;

/// <summary>
/// Writes batches of source transactions to the target, each batch in one target transaction whose commit
/// also records the replication origin's progress: the rows and "how far we are" cannot disagree after a crash.
/// </summary>
internal sealed class ApplyWriter : IAsyncDisposable
{
    private const int MaxCommandsPerRoundTrip = 256;
    private const int MaxParametersPerRoundTrip = 30_000;

    private readonly NpgsqlConnection _conn;
    private readonly string _subscription;
    private readonly ILogger _log;
    private readonly RowStatements _statements;
    private readonly Dictionary<SourceRelation, TargetTable> _targets = new();
    private readonly List<PendingCommand> _pending = new();
    private readonly ConflictApplier? _conflicts;
    private readonly MarkerApplier? _markers;
    private NpgsqlBatch? _batch;
    private int _pendingParameters;

    private readonly record struct PendingCommand(SourceTransaction? Tx, RowChange Change, int Rows);

    private ApplyWriter(NpgsqlConnection conn, string subscription, ConflictApplier? conflicts, MarkerApplier? markers, ILogger log)
    {
        _conn = conn;
        _subscription = subscription;
        _statements = new RowStatements(subscription);
        _conflicts = conflicts;
        _markers = markers;
        _log = log;
    }

    public long MissingRows { get; private set; }

    /// <summary>Conflicts the last applied transaction met, and whether it queued rows to send again.</summary>
    public int LastConflicts { get; private set; }

    public bool LastQueuedRebroadcasts { get; private set; }

    /// <summary>Opens the apply session: replica role (no user triggers or FK checks) and the subscription's origin.</summary>
    /// <param name="conflicts">Set when some tables' conflicts are handled: every batch must then be one source transaction.</param>
    /// <param name="asyncCommit">
    /// Commit without waiting for the WAL flush; the caller then confirms only positions PostgreSQL reports flushed
    /// (<see cref="ReadProgressAsync"/> with flush), so a crash of the target never loses what the origin was told is safe.
    /// </param>
    /// <param name="recent">The transactions this stream applied, which compare and repair requests are checked against.</param>
    /// <param name="synchronous">
    /// The origin waits for this subscription: every commit flushes its WAL locally before the position is confirmed
    /// (<c>synchronous_commit = local</c>, whatever the target's default: not <c>on</c>, which would also wait for the
    /// target's own synchronous standbys, and two nodes synchronous to each other would then wait for each other).
    /// </param>
    /// <param name="lockTimeout">
    /// How long a statement may wait for a lock (<c>lock_timeout</c>; <c>apply_timeout</c> in the file). Past it PostgreSQL
    /// cancels the statement with 55P03 and the batch rolls back whole; the worker names the sessions holding the lock.
    /// </param>
    public static async Task<ApplyWriter> OpenAsync(string connectionString, string subscription, ILogger log, CancellationToken ct,
        ConflictApplier? conflicts = null, bool asyncCommit = false, Markers.RecentTransactions? recent = null, Ddl.DdlReplayer? ddl = null,
        Sequences.SequenceFollower? sequences = null, bool synchronous = false, TimeSpan? lockTimeout = null)
    {
        if (asyncCommit && synchronous)
            throw new ArgumentException("a synchronous subscription commits synchronously", nameof(asyncCommit));
        var timeout = lockTimeout ?? Config.SubscriptionConfig.DefaultApplyTimeout;
        var conn = new NpgsqlConnection(ApplyConnectionString(connectionString, subscription, timeout));
        await conn.OpenAsync(ct);
        try
        {
            // Generic plans: the statements are key lookups whose plan does not depend on the values, and a
            // REPLICA IDENTITY FULL match on a wide table costs far more to plan than to run.
            var lockMs = ((long)Math.Ceiling(timeout.TotalMilliseconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await using (var role = new NpgsqlCommand("SET session_replication_role = replica; SET plan_cache_mode = force_generic_plan"
                                                       + $"; SET lock_timeout = {lockMs}"
                                                       + (asyncCommit ? "; SET synchronous_commit = off" : synchronous ? "; SET synchronous_commit = local" : ""), conn))
                await role.ExecuteNonQueryAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT pg_replication_origin_session_setup($1)", conn);
            cmd.Parameters.AddWithValue(Sql.OriginName(subscription));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
        var markers = recent is null ? null : new MarkerApplier(subscription, recent, new CompareSessions(connectionString, subscription, log), ddl, sequences, log);
        return new ApplyWriter(conn, subscription, conflicts, markers, log);
    }

    /// <summary>
    /// The apply session's connection string. The client's own command timeout stays well above the lock timeout, so a
    /// lock wait ends in PostgreSQL's clear 55P03 rather than in a client-side cancel that breaks the connection.
    /// </summary>
    public static string ApplyConnectionString(string connectionString, string subscription, TimeSpan lockTimeout) =>
        new NpgsqlConnectionStringBuilder(connectionString)
        {
            ApplicationName = Sql.ApplicationName(subscription) + "_apply",
            Options = ChangeStream.SessionOptions,
            Pooling = false,
            IncludeErrorDetail = true,
            CommandTimeout = (int)Math.Max(120, Math.Ceiling(lockTimeout.TotalSeconds) + 60),
            MaxAutoPrepare = 64,
            AutoPrepareMinUsages = 2,
        }.ConnectionString;

    /// <summary>Replication origin progress: the end LSN of the last source transaction committed here.</summary>
    /// <remarks>With flush (the default) PostgreSQL first flushes the WAL up to the commit that recorded it.</remarks>
    public static async Task<NpgsqlLogSequenceNumber> ReadProgressAsync(NpgsqlConnection conn, string subscription, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_replication_origin_progress($1, true)::text", conn);
        cmd.Parameters.AddWithValue(Sql.OriginName(subscription));
        var v = await cmd.ExecuteScalarAsync(ct);
        return v is string s ? NpgsqlLogSequenceNumber.Parse(s) : NpgsqlLogSequenceNumber.Invalid;
    }

    /// <summary>Applies <paramref name="txs"/> as one target transaction. Returns the number of row changes written.</summary>
    public async Task<int> ApplyAsync(IReadOnlyList<SourceTransaction> txs, double rowsPerSecond, CancellationToken ct)
    {
        var rows = txs.Sum(t => t.ChangeCount);
        var sourceOrder = txs.Select(t => ((SourceTransaction?)t, (IReadOnlyList<RowChange>)t.Changes)).ToList();
        LastConflicts = 0;
        LastQueuedRebroadcasts = false;
        if (txs is [{ Spilled: { } spilled } big])
        {
            if (_conflicts is not null)
                throw new InvalidOperationException("a subscription with conflict handling plans each transaction in memory and does not spill");
            return await ApplySpilledAsync(big, spilled, rowsPerSecond, ct);
        }
        if (txs.Any(t => t.Spilled is not null))
            throw new InvalidOperationException("a spilled transaction is applied alone");
        if (_conflicts is not null)
        {
            if (txs.Count != 1)
                throw new InvalidOperationException("with conflict handling every target transaction carries exactly one source transaction, whose commit time becomes its rows' version");
            try
            {
                await ApplyChangesAsync(txs, sourceOrder, rows, rowsPerSecond, sets: true, ct, planConflicts: true);
                return rows;
            }
            catch (Exception e) when (e is ApplyException or PostgresException && _conn.State == System.Data.ConnectionState.Open)
            {
                _log.LogDebug("subscription {Subscription}: transaction refused ({Error}); applying it again row by row", _subscription, e.Message);
            }
            await ApplyChangesAsync(txs, sourceOrder, rows, rowsPerSecond, sets: false, ct, planConflicts: true);
            return rows;
        }
        try
        {
            if (txs.Count > 1)
            {
                var compacted = BatchCompactor.Compact(txs, out var sourceChanges);
                await ApplyChangesAsync(txs, [(null, compacted)], sourceChanges, rowsPerSecond, sets: true, ct);
                return sourceChanges;
            }
            await ApplyChangesAsync(txs, sourceOrder, rows, rowsPerSecond, sets: true, ct);
            return rows;
        }
        // Only while the session is still open: some errors (a full disk, 53100) leave Npgsql's connection closed, and the
        // retry would then replace the real cause with "Connection is not open".
        catch (Exception e) when (e is ApplyException or PostgresException && _conn.State == System.Data.ConnectionState.Open)
        {
            // Compaction and set-based statements change the order in which the target sees rows, which only a
            // non-key unique constraint can notice. Row by row in source order is always valid, and reports the
            // exact transaction and row when the error is real.
            _log.LogDebug("subscription {Subscription}: batch refused ({Error}); applying it row by row in source order", _subscription, e.Message);
        }
        await ApplyChangesAsync(txs, sourceOrder, rows, rowsPerSecond, sets: false, ct);
        return rows;
    }

    /// <summary>
    /// A transaction spilled to disk: one target transaction like any other, fed block by block from the file, so only one
    /// block is in memory. Refused with set-based statements, it is read again and applied row by row in source order.
    /// </summary>
    private async Task<int> ApplySpilledAsync(SourceTransaction tx, Capture.SpilledChanges spilled, double rowsPerSecond, CancellationToken ct)
    {
        _log.LogInformation("subscription {Subscription}: applying source transaction {Xid} ({Changes} changes) from its spill file", _subscription, tx.Xid, spilled.Count);
        try
        {
            await ApplyChangesAsync([tx], Blocks(tx, spilled, ct), spilled.Count, rowsPerSecond, sets: true, ct);
            return spilled.Count;
        }
        catch (Exception e) when (e is ApplyException or PostgresException && _conn.State == System.Data.ConnectionState.Open)
        {
            _log.LogDebug("subscription {Subscription}: spilled transaction refused ({Error}); applying it again row by row", _subscription, e.Message);
        }
        await ApplyChangesAsync([tx], Blocks(tx, spilled, ct), spilled.Count, rowsPerSecond, sets: false, ct);
        return spilled.Count;

        static async IAsyncEnumerable<(SourceTransaction?, IReadOnlyList<RowChange>)> Blocks(SourceTransaction tx, Capture.SpilledChanges spilled,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var block in spilled.ReadAsync(ct))
                yield return (tx, block);
        }
    }

    private Task ApplyChangesAsync(IReadOnlyList<SourceTransaction> txs, IEnumerable<(SourceTransaction? Tx, IReadOnlyList<RowChange> Changes)> segments,
        int sourceRows, double rowsPerSecond, bool sets, CancellationToken ct, bool planConflicts = false) =>
        ApplyChangesAsync(txs, segments.ToAsyncEnumerable(), sourceRows, rowsPerSecond, sets, ct, planConflicts);

    private async Task ApplyChangesAsync(IReadOnlyList<SourceTransaction> txs, IAsyncEnumerable<(SourceTransaction? Tx, IReadOnlyList<RowChange> Changes)> segments,
        int sourceRows, double rowsPerSecond, bool sets, CancellationToken ct, bool planConflicts = false)
    {
        var last = txs[^1];
        _batch?.Dispose();
        _pending.Clear();
        _pendingParameters = 0;
        await using var tx = await _conn.BeginTransactionAsync(ct);
        _batch = new NpgsqlBatch(_conn, tx);

        Add(null, "SELECT pg_replication_origin_xact_setup($1::text::pg_lsn, $2)",
            RowStatements.Text(last.EndLsn.ToString()), new NpgsqlParameter { Value = last.CommitTime, NpgsqlDbType = NpgsqlDbType.TimestampTz });

        ConflictApplier.Plan? plan = null;
        if (planConflicts)
        {
            plan = await _conflicts!.PlanAsync(_conn, tx, last, r => TargetAsync(r, tx, ct), ct);
            segments = new[] { ((SourceTransaction?)last, (IReadOnlyList<RowChange>)plan.Changes) }.ToAsyncEnumerable();
            LastConflicts = plan.Conflicts;
            LastQueuedRebroadcasts = plan.Rebroadcasts;
        }

        // A schema-change marker that ran its script skips the rest of its transaction, which may span several blocks.
        SourceTransaction? skipRestOf = null;
        await foreach (var (t, changes) in segments)
        {
            if (skipRestOf is not null && ReferenceEquals(t, skipRestOf)) continue;
            for (var i = 0; i < changes.Count; i++)
            {
                var c = changes[i];
                if (Markers.MarkerTables.IsAction(c.Relation))
                {
                    // A compare or repair request: acted on here, after everything before it, instead of being written.
                    await FlushAsync(ct);
                    var outcome = _markers is null ? MarkerOutcome.Continue : await _markers.HandleAsync(_conn, tx, c, ct);
                    if (outcome == MarkerOutcome.Continue) continue;
                    // The schema changed: tables are looked up again (and a script's own row changes, which it made
                    // again here, are not applied a second time).
                    _targets.Clear();
                    if (outcome == MarkerOutcome.SchemaChangedSkipRest)
                    {
                        skipRestOf = t;
                        break;
                    }
                    continue;
                }
                var target = await TargetAsync(c.Relation, tx, ct);
                if (c.Kind == ChangeKind.Truncate)
                {
                    var tables = new List<TargetTable>();
                    foreach (var r in c.TruncatedRelations!)
                        tables.Add(await TargetAsync(r, tx, ct));
                    Add(new PendingCommand(t, c, 1), ChangeSqlBuilder.Truncate(tables, c.TruncateRestartIdentity));
                }
                else if (_statements.Next(changes, i, target, sets) is { } statement)
                {
                    Add(new PendingCommand(t, c, statement.Rows), statement.Sql, statement.Parameters);
                    i += statement.Rows - 1;
                }
                if (_batch.BatchCommands.Count >= MaxCommandsPerRoundTrip || _pendingParameters >= MaxParametersPerRoundTrip)
                    await FlushAsync(ct);
            }
        }

        if (plan is not null)
            foreach (var (sql, parameters) in plan.Statements)
                Add(null, sql, parameters);

        Add(null, """
            UPDATE navette.subscription
               SET state = 'streaming', error = NULL, error_at = NULL,
                   last_commit_lsn = $2::text::pg_lsn, last_commit_time = $3, last_end_lsn = $7::text::pg_lsn,
                   txns_applied = txns_applied + $4, rows_applied = rows_applied + $5,
                   rows_per_second = $6, updated_at = now()
             WHERE name = $1
            """,
            new NpgsqlParameter { Value = _subscription }, RowStatements.Text(last.CommitLsn.ToString()),
            new NpgsqlParameter { Value = last.CommitTime, NpgsqlDbType = NpgsqlDbType.TimestampTz },
            new NpgsqlParameter { Value = (long)txs.Count }, new NpgsqlParameter { Value = (long)sourceRows },
            new NpgsqlParameter { Value = rowsPerSecond }, RowStatements.Text(last.EndLsn.ToString()));
        await FlushAsync(ct);
        await tx.CommitAsync(ct);
        _batch.Dispose();
        _batch = null;
    }

    private void Add(PendingCommand? pending, string sql, params NpgsqlParameter[] parameters)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        cmd.Parameters.AddRange(parameters);
        _batch!.BatchCommands.Add(cmd);
        _pending.Add(pending ?? default);
        _pendingParameters += parameters.Length;
    }

    private async Task FlushAsync(CancellationToken ct)
    {
        if (_batch!.BatchCommands.Count == 0) return;
        try
        {
            await _batch.ExecuteNonQueryAsync(ct);
        }
        catch (PostgresException e) when (e.BatchCommand is not null)
        {
            var index = _batch.BatchCommands.IndexOf(e.BatchCommand);
            var p = index >= 0 ? _pending[index] : default;
            throw p.Change is null ? e : new ApplyException(Describe(p, e), e) { Change = p.Change };
        }
        for (var i = 0; i < _pending.Count; i++)
        {
            var p = _pending[i];
            if (p.Change is null || p.Change.Kind is ChangeKind.Insert or ChangeKind.Truncate) continue;
            var affected = _batch.BatchCommands[i].RecordsAffected;
            if (affected < p.Rows)
            {
                MissingRows += p.Rows - affected;
                if (p.Rows == 1)
                    _log.LogWarning("subscription {Subscription}: {Kind} found no row in {Table} for {Key} (source transaction {Xid}); the target had diverged",
                        _subscription, p.Change.Kind, p.Change.Relation, KeyText(p.Change), p.Tx?.Xid.ToString() ?? "in a compacted batch");
                else
                    _log.LogWarning("subscription {Subscription}: {Kind} of {Rows} rows in {Table} starting at {Key} found only {Affected}; the target had diverged",
                        _subscription, p.Change.Kind, p.Rows, p.Change.Relation, KeyText(p.Change), affected);
            }
        }
        _batch.BatchCommands.Clear();
        _pending.Clear();
        _pendingParameters = 0;
    }

    private string Describe(PendingCommand p, PostgresException e)
    {
        var what = p.Change.Kind switch
        {
            ChangeKind.Insert => p.Rows > 1 ? $"INSERT of {p.Rows} rows starting at {KeyText(p.Change)}" : $"INSERT of {KeyText(p.Change)}",
            ChangeKind.Truncate => "TRUNCATE",
            _ => $"{p.Change.Kind.ToString().ToUpperInvariant()} of {KeyText(p.Change)}",
        };
        var detail = string.IsNullOrEmpty(e.Detail) ? "" : $" ({e.Detail})";
        var source = p.Tx is { } t ? $"source transaction {t.Xid} committed at {t.CommitLsn}" : "a batch of source transactions";
        return $"subscription {_subscription}: {what} into {p.Change.Relation} failed: {e.SqlState} {e.MessageText}{detail}; " +
               $"{source}. Nothing after it was applied; fix the target and the subscription resumes from this transaction.";
    }

    internal static string KeyText(RowChange c)
    {
        var rel = c.Relation;
        var image = c.Old ?? c.New;
        if (image is null) return "(no key)";
        var cols = rel.IdentityFull ? Enumerable.Range(0, Math.Min(3, rel.Columns.Length)) : rel.KeyColumns;
        var parts = cols.Select(i => $"{rel.Columns[i]}={Shorten(image.Values[i])}");
        return (rel.KeyColumns.Length == 0 && !rel.IdentityFull ? "row" : "key ") + string.Join(", ", parts);
    }

    private static string Shorten(string? v) => v is null ? "NULL" : v.Length <= 64 ? v : v[..61] + "...";

    private async Task<TargetTable> TargetAsync(SourceRelation rel, NpgsqlTransaction tx, CancellationToken ct)
    {
        if (_targets.TryGetValue(rel, out var t)) return t;
        // Flushing first keeps statement order intact when the lookup has to run on the same connection.
        await FlushAsync(ct);
        t = await TargetTable.LoadAsync(_conn, tx, rel.Schema, rel.Name, ct)
            ?? throw new NavetteException($"subscription {_subscription}: table {rel} is replicated from the origin but does not exist on the target; create it (or set copy_schema: true) and the subscription resumes");
        _targets[rel] = t;
        return t;
    }

    public async ValueTask DisposeAsync()
    {
        _batch?.Dispose();
        if (_markers is not null) await _markers.DisposeAsync();
        await _conn.DisposeAsync();
    }
}

/// <summary>A change the target refused; the message names the table, the key and the source transaction.</summary>
internal sealed class ApplyException(string message, Exception inner) : NavetteException(message, inner)
{
    /// <summary>The change the target refused.</summary>
    public RowChange? Change { get; init; }
}
