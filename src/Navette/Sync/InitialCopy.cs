using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Navette.Capture;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using NpgsqlTypes;

namespace Navette.Sync;

/// <summary>
/// Copies every table of a subscription under the snapshot exported by the creation of its slot, so that the
/// stream starting at the slot's consistent point carries exactly the transactions the copy did not see.
/// </summary>
/// <param name="beforeSnapshot">Runs just before the slot (and its snapshot) is created.</param>
/// <param name="underSnapshot">Runs once on a source connection inside the copy's snapshot: reads what the copied data includes.</param>
internal sealed class InitialCopy(
    string subscription, string sourceConnectionString, string targetConnectionString,
    IReadOnlyList<string> publications, int workers, ILogger log,
    Func<CancellationToken, Task>? beforeSnapshot = null,
    Func<NpgsqlConnection, NpgsqlTransaction, CancellationToken, Task>? underSnapshot = null)
{
    private readonly ConcurrentDictionary<CopyTable, TableProgress> _progress = new();
    private List<(Guid Id, DateTime At, string Node)>? _fences;

    private sealed class TableProgress
    {
        public long Rows;
        public long Bytes;
        public int ChunksLeft;
        /// <summary>Runs from the moment the table's first part starts copying, not while it waits in the queue.</summary>
        public readonly Stopwatch Clock = new();
        public int Started;
    }

    /// <summary>
    /// Runs the copy. <paramref name="resuming"/> says an earlier attempt may have left partial rows in the
    /// target tables (they are emptied); otherwise a non-empty target table is refused rather than mixed with.
    /// Returns the LSN streaming must start from. <paramref name="started"/> runs once the target tables are known
    /// to be empty (or emptied) and before anything is written to them: from then on a failed attempt leaves
    /// rows that the next one must remove, so that is when the caller records that a copy is under way. Recording
    /// it earlier would let a retry after "not empty" truncate the operator's own rows.
    /// </summary>
    public async Task<NpgsqlLogSequenceNumber> RunAsync(bool resuming, Func<CancellationToken, Task> started, CancellationToken ct)
    {
        await using var source = new NpgsqlConnection(CopyConnectionString(sourceConnectionString, "copy"));
        await source.OpenAsync(ct);
        var tables = await PublishedTables.ReadAsync(source, publications, ct);

        var indexes = new DeferredIndexes(subscription, CopyConnectionString(targetConnectionString, "index"), log);
        await using (var target = new NpgsqlConnection(CopyConnectionString(targetConnectionString, "copy")))
        {
            await target.OpenAsync(ct);
            await PrepareTargetAsync(target, tables, resuming, ct);
            await started(ct);
            await indexes.DeferAsync(target, tables, ct);
        }

        var slot = Sql.SlotName(subscription);
        await DropSlotIfInactiveAsync(source, slot, ct);
        if (beforeSnapshot is not null)
            await beforeSnapshot(ct);

        var csb = new NpgsqlConnectionStringBuilder(sourceConnectionString) { ApplicationName = Sql.ApplicationName(subscription) + "_copy", Options = ChangeStream.SessionOptions };
        await using var repl = new LogicalReplicationConnection(csb.ConnectionString);
        await repl.Open(ct);
        var created = await repl.CreatePgOutputReplicationSlot(slot, temporarySlot: false, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.Export, cancellationToken: ct);
        var snapshot = created.SnapshotName ?? throw new InvalidOperationException("the origin did not export a snapshot for the new slot");
        var consistent = created.ConsistentPoint;
        var chunks = tables.SelectMany(CopyChunk.Plan).ToList();
        log.LogInformation("subscription {Subscription}: slot {Slot} created at {Lsn}; copying {Count} tables ({Size:F1} MB, {Chunks} parts) with {Workers} connections under snapshot {Snapshot}",
            subscription, slot, consistent, tables.Count, tables.Sum(t => t.SizeBytes) / 1048576.0, chunks.Count, Math.Min(workers, Math.Max(1, chunks.Count)), snapshot);

        foreach (var group in chunks.GroupBy(c => c.Table))
            _progress[group.Key] = new TableProgress { ChunksLeft = group.Count() };
        var queue = new ConcurrentQueue<CopyChunk>(chunks);
        var imported = new List<TaskCompletionSource>();
        var tasks = new List<Task>();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
        for (var i = 0; i < Math.Min(workers, Math.Max(1, chunks.Count)); i++)
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var copiesFences = i == 0;
            var index = i + 1;
            imported.Add(tcs);
            // Not started with failed.Token: a worker that never ran would never complete its tcs.
            tasks.Add(Task.Run(async () =>
            {
                try { await CopyWorkerAsync(index, snapshot, queue, tcs, copiesFences, failed.Token); }
                catch { tcs.TrySetCanceled(); await failed.CancelAsync(); throw; }
            }, CancellationToken.None));
        }
        await using var reporter = new CopyProgressReporter(subscription, CopyConnectionString(targetConnectionString, "progress"), ProgressSnapshot, Report, log);
        try
        {
            // The exported snapshot lives only while the slot's replication connection stays idle: every worker
            // imports it before that connection is released.
            await Task.WhenAll(imported.Select(t => t.Task));
            await repl.DisposeAsync();
        }
        catch
        {
            // A worker failed before importing: its own error, not the cancellation it caused, is the cause.
            await failed.CancelAsync();
            await ThrowFirstCauseAsync(tasks, ct);
            throw;
        }
        await ThrowFirstCauseAsync(tasks, ct);
        await indexes.RebuildAsync(workers, ct);
        await WriteFencesAsync(ct);

        var totalRows = _progress.Values.Sum(p => p.Rows);
        var totalBytes = _progress.Values.Sum(p => p.Bytes);
        log.LogInformation("subscription {Subscription}: initial copy done, {Rows} rows, {MB:F1} MB", subscription, totalRows, totalBytes / 1048576.0);
        return consistent;
    }

    /// <summary>
    /// Waits for every task; when some failed, rethrows the error that started it rather than the cancellations
    /// it caused in the others (unless the copy as a whole was cancelled).
    /// </summary>
    private static async Task ThrowFirstCauseAsync(List<Task> tasks, CancellationToken ct)
    {
        var all = Task.WhenAll(tasks);
        try
        {
            await all;
        }
        catch when (all.Exception is { } agg && !ct.IsCancellationRequested)
        {
            var cause = agg.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? agg.InnerExceptions[0];
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
        }
    }

    private async Task CopyWorkerAsync(int index, string snapshot, ConcurrentQueue<CopyChunk> queue, TaskCompletionSource imported, bool copyFences, CancellationToken ct)
    {
        await using var source = new NpgsqlConnection(CopyConnectionString(sourceConnectionString, "copy"));
        await source.OpenAsync(ct);
        await using var srcTx = await source.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        await using (var cmd = new NpgsqlCommand($"SET TRANSACTION READ ONLY; SET TRANSACTION SNAPSHOT {Sql.Literal(snapshot)}", source, srcTx))
            await cmd.ExecuteNonQueryAsync(ct);
        imported.TrySetResult();

        await using var target = new NpgsqlConnection(CopyConnectionString(targetConnectionString, "copy"));
        await target.OpenAsync(ct);
        await using (var cmd = new NpgsqlCommand("SET session_replication_role = replica; SET synchronous_commit = off", target))
            await cmd.ExecuteNonQueryAsync(ct);
        var tagged = await TagWithOriginAsync(target, index, ct);

        if (copyFences)
        {
            _fences = await ReadFencesAsync(source, srcTx, ct);
            if (underSnapshot is not null)
                await underSnapshot(source, srcTx, ct);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            while (queue.TryDequeue(out var chunk))
                await CopyOneAsync(chunk, source, target, buffer, ct);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (tagged) await ReleaseOriginAsync(target, index);
    }

    /// <summary>
    /// The name of the replication origin that marks the rows copy worker <paramref name="index"/> writes (0: the
    /// emptying of the target tables). Not under <c>navette_</c>, which names the subscriptions' own origins.
    /// </summary>
    internal static string CopyOriginName(string subscription, int index) => $"navette-copy:{subscription}:{index}";

    /// <summary>
    /// Marks everything this target session writes as coming from a replication origin, as the streamed changes
    /// are: when the target is itself an origin (a cascade, or a loop), its own subscriptions then treat the copied
    /// rows as received, not local (passed on only with forward). One origin per session, since PostgreSQL 15 lets
    /// a single session use an origin at a time; a leftover of an interrupted copy is taken over.
    /// </summary>
    private async Task<bool> TagWithOriginAsync(NpgsqlConnection target, int index, CancellationToken ct)
    {
        var name = CopyOriginName(subscription, index);
        try
        {
            await using (var create = new NpgsqlCommand("SELECT pg_replication_origin_create($1) WHERE pg_replication_origin_oid($1) IS NULL", target))
            {
                create.Parameters.AddWithValue(name);
                await create.ExecuteNonQueryAsync(ct);
            }
            await using var setup = new NpgsqlCommand("SELECT pg_replication_origin_session_setup($1)", target);
            setup.Parameters.AddWithValue(name);
            await setup.ExecuteNonQueryAsync(ct);
            return true;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.ConfigurationLimitExceeded)
        {
            log.LogWarning("subscription {Subscription}: copy connection {Index} writes without a replication origin ({Error}); " +
                           "if this node passes the subscription's tables on, raise max_replication_slots on it", subscription, index, e.MessageText);
            return false;
        }
    }

    private async Task ReleaseOriginAsync(NpgsqlConnection target, int index)
    {
        try
        {
            await using (var reset = new NpgsqlCommand("SELECT pg_replication_origin_session_reset()", target))
                await reset.ExecuteNonQueryAsync(CancellationToken.None);
            await using var drop = new NpgsqlCommand("SELECT pg_replication_origin_drop($1)", target);
            drop.Parameters.AddWithValue(CopyOriginName(subscription, index));
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            // Harmless: the next copy of this subscription takes it over.
            log.LogDebug("subscription {Subscription}: could not drop replication origin {Origin}: {Error}", subscription, CopyOriginName(subscription, index), e.Message);
        }
    }

    private async Task CopyOneAsync(CopyChunk chunk, NpgsqlConnection source, NpgsqlConnection target, byte[] buffer, CancellationToken ct)
    {
        var table = chunk.Table;
        var progress = _progress[table];
        if (Interlocked.Exchange(ref progress.Started, 1) == 0) progress.Clock.Start();
        var format = table.Binary ? "binary" : "text";
        await using var tx = await target.BeginTransactionAsync(ct);
        await CopyPipe.RunAsync(source, target, table, chunk.CopySource, buffer, (rows, bytes) =>
        {
            Interlocked.Add(ref progress.Rows, rows);
            Interlocked.Add(ref progress.Bytes, bytes);
        }, ct);
        await tx.CommitAsync(ct);
        if (Interlocked.Decrement(ref progress.ChunksLeft) > 0) return;
        progress.Clock.Stop();
        var secs = Math.Max(progress.Clock.Elapsed.TotalSeconds, 0.001);
        log.LogInformation("subscription {Subscription}: copied {Table}: {Rows} rows, {MB:F1} MB in {Seconds:F1} s ({Rate:F1} MB/s, {Format})",
            subscription, table, Interlocked.Read(ref progress.Rows), progress.Bytes / 1048576.0, secs, progress.Bytes / 1048576.0 / secs, format);
    }

    private List<CopyProgressRow> ProgressSnapshot() =>
        _progress.Select(p => new CopyProgressRow(p.Key.ReadableName, Interlocked.Read(ref p.Value.Rows), Interlocked.Read(ref p.Value.Bytes),
            Volatile.Read(ref p.Value.Started) == 1, Volatile.Read(ref p.Value.ChunksLeft) == 0)).ToList();

    private void Report()
    {
        foreach (var (table, p) in _progress)
        {
            if (!p.Clock.IsRunning) continue;
            var secs = Math.Max(p.Clock.Elapsed.TotalSeconds, 0.001);
            log.LogInformation("subscription {Subscription}: copying {Table}: {Rows} rows, {MB:F1} MB ({Rate:F1} MB/s)",
                subscription, table, Interlocked.Read(ref p.Rows), Interlocked.Read(ref p.Bytes) / 1048576.0, Interlocked.Read(ref p.Bytes) / 1048576.0 / secs);
        }
    }

    /// <summary>Fences written before the snapshot must reach the target too, or a pending navette wait would never see them.</summary>
    private static async Task<List<(Guid Id, DateTime At, string Node)>> ReadFencesAsync(NpgsqlConnection source, NpgsqlTransaction srcTx, CancellationToken ct)
    {
        var rows = new List<(Guid, DateTime, string)>();
        await using var cmd = new NpgsqlCommand("SELECT id, created_at, node FROM navette.fence", source, srcTx);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            rows.Add((r.GetGuid(0), r.GetDateTime(1), r.GetString(2)));
        return rows;
    }

    /// <summary>
    /// Writes the fences the snapshot saw, once every copied row has committed: a fence must never reach the target
    /// (or a node it forwards to) ahead of rows written before it.
    /// </summary>
    private async Task WriteFencesAsync(CancellationToken ct)
    {
        if (_fences is not { Count: > 0 } rows) return;
        await using var target = new NpgsqlConnection(CopyConnectionString(targetConnectionString, "copy"));
        await target.OpenAsync(ct);
        await using var ins = new NpgsqlCommand(
            "INSERT INTO navette.fence (id, created_at, node) SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) ON CONFLICT DO NOTHING", target);
        ins.Parameters.AddWithValue(rows.Select(x => x.Id).ToArray());
        ins.Parameters.AddWithValue(rows.Select(x => x.At).ToArray());
        ins.Parameters.AddWithValue(rows.Select(x => x.Node).ToArray());
        await ins.ExecuteNonQueryAsync(ct);
    }

    private async Task PrepareTargetAsync(NpgsqlConnection target, List<CopyTable> tables, bool resuming, CancellationToken ct)
    {
        if (tables.Count == 0) return;
        // ONLY: an inheritance child that exists only on the target is not the copy's business (a partitioned
        // table cannot be named with ONLY, and its partitions are its rows).
        var names = new List<string>();
        foreach (var t in tables)
        {
            await using var kind = new NpgsqlCommand("SELECT relkind FROM pg_class WHERE oid = $1::regclass", target);
            kind.Parameters.AddWithValue(t.QualifiedName);
            names.Add((await kind.ExecuteScalarAsync(ct)) is 'p' ? t.QualifiedName : "ONLY " + t.QualifiedName);
        }
        if (resuming)
        {
            log.LogInformation("subscription {Subscription}: an earlier copy was interrupted; emptying its {Count} target tables before copying again", subscription, tables.Count);
            var tagged = await TagWithOriginAsync(target, 0, ct);
            try
            {
                await using var cmd = new NpgsqlCommand("TRUNCATE " + string.Join(", ", names), target);
                await cmd.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.FeatureNotSupported)
            {
                // A table outside the subscription references one of these by foreign key: TRUNCATE refuses even
                // in replica role, DELETE does not check it there.
                log.LogInformation("subscription {Subscription}: {Error}; deleting the partial copy row by row instead", subscription, e.MessageText);
                await using var role = new NpgsqlCommand("SET session_replication_role = replica", target);
                await role.ExecuteNonQueryAsync(ct);
                foreach (var name in names)
                {
                    await using var delete = new NpgsqlCommand($"DELETE FROM {name}", target);
                    await delete.ExecuteNonQueryAsync(ct);
                }
            }
            if (tagged) await ReleaseOriginAsync(target, 0);
            return;
        }
        for (var i = 0; i < tables.Count; i++)
        {
            await using var cmd = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM {names[i]})", target);
            if ((bool)(await cmd.ExecuteScalarAsync(ct))!)
                throw new NavetteException(
                    $"subscription {subscription}: target table {tables[i]} is not empty, and an initial copy would mix its rows with the origin's; " +
                    "empty it (TRUNCATE) or set initial_copy: false if it already holds the same data");
        }
    }

    private static async Task DropSlotIfInactiveAsync(NpgsqlConnection source, string slot, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", source);
        cmd.Parameters.AddWithValue(slot);
        var active = await cmd.ExecuteScalarAsync(ct);
        if (active is null) return;
        if ((bool)active)
            throw new NavetteException($"slot {slot} is in use by another process; is another navette run streaming this subscription?");
        await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", source);
        drop.Parameters.AddWithValue(slot);
        await drop.ExecuteNonQueryAsync(ct);
    }

    private string CopyConnectionString(string cs, string role) =>
        new NpgsqlConnectionStringBuilder(cs)
        {
            ApplicationName = Sql.ApplicationName(subscription) + "_" + role,
            Options = ChangeStream.SessionOptions,
            Pooling = false,
            CommandTimeout = 0,
        }.ConnectionString;
}
