using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Navette.Apply;
using Navette.Capture;
using Navette.Conflicts;
using Navette.Markers;
using Navette.Monitoring;
using Navette.Sync;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Daemon;

/// <summary>
/// Runs one subscription: initial copy when it has not happened yet, then streaming. A failure stops the
/// attempt with nothing half-applied; <see cref="RunSupervisedAsync"/> retries with exponential backoff and
/// every attempt resumes from the replication origin's progress on the target.
/// </summary>
internal sealed class SubscriptionWorker(SubscriptionPlan plan, ILogger log, SubscriptionMetrics? metrics = null)
{
    internal const int MaxTransactionsPerBatch = 2000;
    internal const int MaxChangesPerBatch = 20_000;
    private const long MaxBytesPerBatch = 64L << 20;
    private const int ChannelCapacity = 10_000;
    /// <summary>Memory of the transactions received and not applied yet, beyond which the reader waits for the applier.</summary>
    private const long MaxInflightBytes = 256L << 20;

    /// <summary>
    /// A synchronous subscription's watcher looks this often for a position to confirm without a transaction (the origin's
    /// keepalive after WAL the subscription does not carry: other tables, other databases), since commits wait for it.
    /// </summary>
    private static readonly TimeSpan SynchronousWatchInterval = TimeSpan.FromMilliseconds(10);
    /// <summary>How long a stream must stay up with everything received applied before it counts as healthy.</summary>
    private static readonly TimeSpan HealthyAfter = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FinalFeedbackTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Serialises the applier's and the watcher's confirmations: ChangeStream.Confirm is monotonic in its own
    /// counter but hands the value to the connection after the fact, so two racing calls could leave the older
    /// position as the one reported.
    /// </summary>
    private readonly Lock _confirmLock = new();
    private long _appliedTransactions;
    private double _rowsPerSecond;
    /// <summary>Set once the current attempt has shown it works (applied a batch, or streamed idle a while).</summary>
    private volatile bool _healthy;
    /// <summary>The last attempt failed and none since proved healthy: the error stays visible in status until one does.</summary>
    private volatile bool _failing;
    /// <summary>
    /// After a batch was refused, transactions up to this LSN are applied one per target transaction, so that the
    /// good ones before the culprit commit and the subscription stops exactly at the one that fails.
    /// </summary>
    private NpgsqlLogSequenceNumber _isolateUpTo = NpgsqlLogSequenceNumber.Invalid;
    /// <summary>End LSN of the last source transaction whose rows were committed on the target by this attempt.</summary>
    private long _lastWrittenEnd;
    /// <summary>Released when an applied transaction queued rows to send again.</summary>
    private readonly SemaphoreSlim _resend = new(0);
    private static readonly TimeSpan ResendInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan TombstoneRetention = TimeSpan.FromHours(24);
    private static readonly TimeSpan TombstoneSweepInterval = TimeSpan.FromMinutes(10);

    public SubscriptionPlan Plan => plan;
    public int Restarts { get; private set; }
    public string? LastError { get; private set; }

    public async Task RunSupervisedAsync(CancellationToken ct)
    {
        var backoff = plan.MinBackoff;
        while (!ct.IsCancellationRequested)
        {
            _healthy = false;
            try
            {
                await RunOnceAsync(ct);
            }
            catch (Exception e) when (ct.IsCancellationRequested)
            {
                // Shutting down: whatever broke on the way out is not a failure of the subscription.
                if (e is not OperationCanceledException)
                    log.LogDebug("subscription {Subscription}: error while stopping: {Error}", plan.Name, Describe(e));
                break;
            }
            catch (Exception e)
            {
                Restarts++;
                LastError = await DescribeFailureAsync(e);
                ClearPools();
                _failing = true;
                // An attempt that worked for a while (an outage, not a persistent problem) starts the backoff over.
                if (_healthy) backoff = plan.MinBackoff;
                log.LogError("subscription {Subscription} ({From} -> {To}) failed: {Error}; retrying in {Backoff} s",
                    plan.Name, plan.FromNode, plan.ToNode, LastError, backoff.TotalSeconds);
                if (e is not NavetteException)
                    log.LogDebug(e, "subscription {Subscription}: failure detail", plan.Name);
                await RecordStateAsync(WorkerState.Failed, LastError, CancellationToken.None);
                try { await Task.Delay(backoff, ct); } catch (OperationCanceledException) { break; }
                backoff = TimeSpan.FromSeconds(Math.Min(backoff.TotalSeconds * 2, plan.MaxBackoff.TotalSeconds));
            }
        }
        await RecordStateAsync(WorkerState.Stopped, null, CancellationToken.None);
        log.LogInformation("subscription {Subscription}: stopped", plan.Name);
    }

    /// <summary>
    /// After a failure, pooled connections may be dead (a node restarted) and would fail the next attempts one by
    /// one; they are dropped so that the next attempt connects afresh.
    /// </summary>
    private void ClearPools()
    {
        foreach (var cs in new[] { plan.SourceConnectionString, plan.TargetConnectionString })
        {
            using var conn = new NpgsqlConnection(cs);
            NpgsqlConnection.ClearPool(conn);
        }
    }

    /// <summary>
    /// The failure as the operator should read it. A connection-level error does not say which node it came from (a
    /// wrong password names only the user): both nodes are tried, and the first that refuses is named with its
    /// conninfo (password hidden) and what to fix.
    /// </summary>
    private async Task<string> DescribeFailureAsync(Exception e)
    {
        var text = Describe(e);
        if ((e as PostgresException ?? e.InnerException as PostgresException) is { SqlState: PostgresErrorCodes.DiskFull } full && e is not ApplyException)
            return $"node {plan.ToNode} is out of disk space: {Describe(full)}; free space where that file lives (a path relative to the target's data directory; " +
                   "pg_tblspc/ is a tablespace) and the subscription resumes where it stopped: nothing of the refused transactions was applied";
        if (e is NavetteException || e is not (NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)) return text;
        foreach (var (node, cs, conninfo) in new[] { (plan.ToNode, plan.TargetConnectionString, plan.ToConnInfo), (plan.FromNode, plan.SourceConnectionString, plan.FromConnInfo) })
        {
            try
            {
                var probe = new NpgsqlConnectionStringBuilder(cs) { Pooling = false, Timeout = 5 }.ConnectionString;
                await using var conn = new NpgsqlConnection(probe);
                await conn.OpenAsync(CancellationToken.None);
            }
            catch (Exception pe) when (pe is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
            {
                var what = pe is PostgresException { SqlState: "28P01" or "28000" }
                    ? "fix the user or password in its conninfo (or in PGPASSFILE / PGPASSWORD)"
                    : "check that the node is up and that its conninfo (host, port, dbname) is right";
                return $"cannot connect to node {node} ({conninfo}): {Describe(pe)}; {what}; the subscription resumes where it stopped once it connects";
            }
        }
        return text;
    }

    internal static string Describe(Exception e) => e switch
    {
        NavetteException => e.Message,
        PostgresException pg => $"{pg.SqlState} {pg.MessageText}" + (pg.Detail is { Length: > 0 } d ? $" ({d})" : ""),
        NpgsqlException { InnerException: { } inner } n => $"{n.Message}: {inner.Message}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    public async Task RunOnceAsync(CancellationToken ct)
    {
        var state = await ReadStateAsync(ct);
        if (plan.Join is not null && state == WorkerState.Initializing && !plan.InitialCopy)
        {
            await MeshJoin.WaitForCopyAsync(plan, ReadStateAsync, log, ct);
            _healthy = true;
        }
        if (state is WorkerState.Initializing or WorkerState.Copying && plan.InitialCopy)
        {
            var join = new MeshJoin(plan, log);
            var copy = new InitialCopy(plan.Name, plan.SourceConnectionString, plan.TargetConnectionString, plan.Publications, plan.CopyWorkers, log,
                join.FenceOthersAsync, join.ReadPositionsAsync);
            // 'copying' is recorded once the target tables are checked empty and before any row is written, and must
            // not be lost: it is what tells the next attempt that the target tables may hold a partial copy to empty.
            var consistent = await copy.RunAsync(resuming: state == WorkerState.Copying, SetCopyingAsync, ct);
            await FinishCopyAsync(consistent, join, ct); // also clears any error of earlier attempts
            _healthy = true;
            _failing = false;
        }
        // A copy interrupted after dropping the target's indexes, then initial_copy turned off: they still come back.
        await new DeferredIndexes(plan.Name, plan.TargetConnectionString, log).RebuildAsync(plan.CopyWorkers, ct);
        await StreamAsync(ct);
    }

    private async Task StreamAsync(CancellationToken ct)
    {
        // The writer comes first: it takes the replication origin, which waits out any session of an earlier
        // attempt (or of a killed process) still finishing on the target. Only then is the progress final.
        var conflicts = plan.Conflicts is { } rules
            ? new ConflictApplier(plan.Name, plan.FromNode, rules, new OriginMap(plan.ToNode, plan.SubscriptionOrigins), plan.TargetConnectionString, log)
            : null;
        var recent = new RecentTransactions();
        NpgsqlLogSequenceNumber start;
        JoinedTables joined;
        await using (var conn = new NpgsqlConnection(plan.TargetConnectionString))
        {
            await conn.OpenAsync(ct);
            start = await ApplyWriter.ReadProgressAsync(conn, plan.Name, ct);
            joined = await JoinedTables.LoadAsync(conn, plan.Name, start, ct);
        }
        var ddl = new Ddl.DdlReplayer(plan.Name, plan.FromNode, plan.Sets, new TableJoiner(plan.Name, plan.SourceConnectionString, joined, log), log);
        await using var writer = await ApplyWriter.OpenAsync(plan.TargetConnectionString, plan.Name, log, ct, conflicts, plan.AsyncCommit, recent,
            ddl, new Sequences.SequenceFollower(plan.Name, plan.Sets, log), plan.Synchronous, plan.ApplyTimeout);
        await using var stream = await ChangeStream.OpenAsync(plan.SourceConnectionString, plan.Name, plan.Publications, plan.Forward, log, ct);
        recent.Restart(start);
        log.LogInformation("subscription {Subscription}: streaming {From} -> {To} from {Lsn}", plan.Name, plan.FromNode, plan.ToNode, start);
        // After a failure the error stays shown until this attempt proves healthy (see WatchAsync), rather than
        // blinking to 'streaming' at every retry of a change the target keeps refusing.
        if (!_failing)
            await RecordStateAsync(WorkerState.Streaming, null, ct);

        var channel = Channel.CreateBounded<SourceTransaction>(new BoundedChannelOptions(ChannelCapacity) { SingleReader = true, SingleWriter = true });
        // Two stops: on shutdown the applier finishes its batch and the origin hears what it committed before
        // the replication connection goes.
        using var stopApply = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var stopRead = new CancellationTokenSource();
        _appliedTransactions = 0;
        var inflight = new InflightLimit(MaxInflightBytes);
        var reader = Task.Run(async () =>
        {
            // Conflict handling plans each transaction whole in memory, so a mesh subscription does not spill.
            var spillAbove = plan.Conflicts is null ? plan.MaxTransactionMemory : long.MaxValue;
            try { await stream.RunAsync(start, channel.Writer, stopRead.Token, spillAbove, inflight: inflight); channel.Writer.TryComplete(); }
            catch (Exception e) { channel.Writer.TryComplete(e); throw; }
        }, CancellationToken.None);
        var applier = Task.Run(() => ApplyLoopAsync(channel.Reader, writer, stream, recent, joined, inflight, stopApply.Token), CancellationToken.None);
        var watcher = Task.Run(() => WatchAsync(stream, stopApply.Token), CancellationToken.None);
        var resender = plan.Conflicts is null ? Task.CompletedTask : Task.Run(() => ResendLoopAsync(stopApply.Token), CancellationToken.None);

        var first = await Task.WhenAny(reader, applier);
        if (first == applier && ct.IsCancellationRequested && !reader.IsCompleted)
        {
            if (plan.AsyncCommit)
                await ConfirmFlushedAsync(stream, CancellationToken.None);
            await SendFinalFeedbackAsync(stream);
        }
        await stopApply.CancelAsync();
        await stopRead.CancelAsync();
        try
        {
            await Task.WhenAll(reader, applier, watcher, resender);
        }
        catch
        {
            // Inspected below: the first task to end tells why the attempt ended; the others only stopped because of it.
        }
        // Transactions received but not applied come again with the next attempt; their spill files go now.
        while (channel.Reader.TryRead(out var left))
            if (left.Spilled is { } file) await file.DisposeAsync();
        if (ct.IsCancellationRequested)
            return;
        if (first.IsFaulted)
            await first; // rethrows the cause
        throw new NavetteException(first == reader
            ? "the origin ended the replication stream"
            : "the apply loop ended without an error");
    }

    /// <summary>
    /// Sends the confirmed position to the origin at once (synchronous subscriptions). A failure here is the connection's:
    /// the reader meets it too and ends the attempt, so it is only logged.
    /// </summary>
    private async Task SendStatusNowAsync(ChangeStream stream, CancellationToken ct)
    {
        try
        {
            await stream.SendStatusAsync(ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogDebug("subscription {Subscription}: could not send the confirmed position to the origin: {Error}", plan.Name, e.Message);
        }
    }

    private async Task SendFinalFeedbackAsync(ChangeStream stream)
    {
        try
        {
            using var timeout = new CancellationTokenSource(FinalFeedbackTimeout);
            await stream.SendStatusAsync(timeout.Token);
        }
        catch (Exception e)
        {
            log.LogDebug("subscription {Subscription}: could not send the final position to the origin: {Error}", plan.Name, e.Message);
        }
    }

    private async Task ApplyLoopAsync(ChannelReader<SourceTransaction> input, ApplyWriter writer, ChangeStream stream, RecentTransactions recent,
        JoinedTables joined, InflightLimit inflight, CancellationToken ct)
    {
        var batch = new List<SourceTransaction>(MaxTransactionsPerBatch);
        var clock = Stopwatch.StartNew();
        SourceTransaction? carried = null;
        while (carried is not null || await input.WaitToReadAsync(ct))
        {
            batch.Clear();
            var changes = 0;
            long bytes = 0;
            // With conflict handling each source transaction is its own target transaction: its commit time is the
            // version of the rows it writes.
            var limit = _isolateUpTo == NpgsqlLogSequenceNumber.Invalid && plan.Conflicts is null ? MaxTransactionsPerBatch : 1;
            while (batch.Count < limit && changes < MaxChangesPerBatch && bytes < MaxBytesPerBatch && (carried ?? (input.TryRead(out var read) ? read : null)) is { } tx)
            {
                carried = null;
                joined.Filter(tx);
                // A compare or repair request is applied alone, once everything before it has committed; so is a
                // transaction spilled to disk, which is read back block by block.
                if (tx.Spilled is not null || MarkerTables.HasAction(tx))
                {
                    if (batch.Count > 0) { carried = tx; break; }
                    batch.Add(tx);
                    changes += tx.ChangeCount;
                    break;
                }
                batch.Add(tx);
                changes += tx.Changes.Count;
                bytes += tx.ApproximateBytes;
            }
            if (batch.Count == 0) continue;
            if (changes > 0)
            {
                var t0 = clock.Elapsed;
                int rows;
                try
                {
                    // A batch is applied to the end even when shutdown is requested: it commits whole or not at all.
                    try
                    {
                        rows = await ApplyRetryingAsync(writer, batch);
                    }
                    finally
                    {
                        // Applied or refused, a spilled transaction is received again by any later attempt that needs it.
                        if (batch[0].Spilled is { } spilled) await spilled.DisposeAsync();
                    }
                }
                catch (Exception e) when (e is NavetteException || e is PostgresException pg && !IsConnectionLevel(pg))
                {
                    // The target refused something. The next attempts go one transaction at a time up to here, so
                    // the transactions before the culprit are not held back with it.
                    if (batch[^1].EndLsn > _isolateUpTo)
                        _isolateUpTo = batch[^1].EndLsn;
                    if (LockHolders.IsLockTimeout(e))
                        throw new NavetteException(await DescribeLockWaitAsync(e, batch), e);
                    if (e is ApplyException { Change: { } refusedChange } && ColumnMismatch.IsDataError(e.InnerException!)
                        && await ColumnMismatch.DescribeAsync(plan.TargetConnectionString, refusedChange.Relation, CancellationToken.None) is { Length: > 0 } mismatch)
                        throw new NavetteException($"{e.Message} Types differ: {mismatch}; make them identical on node {plan.ToNode} (ALTER TABLE {refusedChange.Relation.QualifiedName} ALTER COLUMN ... TYPE ...).", e);
                    if (e is PostgresException refused)
                    {
                        var message = DescribeRefusal(refused, batch);
                        if (batch.Count == 1 && ColumnMismatch.IsDataError(refused))
                        {
                            var mismatches = new List<string>();
                            foreach (var rel in batch[0].Changes.Select(c => c.Relation).DistinctBy(r => r.ToString()))
                                if (await ColumnMismatch.DescribeAsync(plan.TargetConnectionString, rel, CancellationToken.None) is { Length: > 0 } m)
                                    mismatches.Add($"{rel}: {m}");
                            if (mismatches.Count > 0)
                                message += $" Types differ: {string.Join("; ", mismatches)}; make them identical on node {plan.ToNode}.";
                        }
                        throw new NavetteException(message, refused);
                    }
                    throw;
                }
                var secs = Math.Max((clock.Elapsed - t0).TotalSeconds, 1e-3);
                _rowsPerSecond = _rowsPerSecond == 0 ? rows / secs : 0.8 * _rowsPerSecond + 0.2 * (rows / secs);
                log.LogDebug("subscription {Subscription}: applied {Txns} transactions, {Rows} rows up to {Lsn} in {Ms:F0} ms", plan.Name, batch.Count, rows, batch[^1].EndLsn, secs * 1000);
                Interlocked.Exchange(ref _lastWrittenEnd, (long)(ulong)batch[^1].EndLsn);
                if (writer.LastQueuedRebroadcasts) _resend.Release();
                metrics?.RecordBatch(batch.Count(t => t.ChangeCount > 0), rows, bytes, clock.Elapsed - t0);
                // The batch's commit also cleared any error shown for the subscription.
                _healthy = true;
                _failing = false;
            }
            inflight.Leave(batch.Sum(t => t.MemoryBytes));
            if (_isolateUpTo != NpgsqlLogSequenceNumber.Invalid && batch[^1].EndLsn >= _isolateUpTo)
                _isolateUpTo = NpgsqlLogSequenceNumber.Invalid;
            foreach (var tx in batch) recent.Add(tx);
            // With asynchronous commit the watcher confirms what PostgreSQL reports flushed instead.
            if (!plan.AsyncCommit)
                lock (_confirmLock) stream.Confirm(batch[^1].EndLsn);
            Interlocked.Add(ref _appliedTransactions, batch.Count);
            // The origin's committing sessions wait for this position: it goes out now, after the durable commit above,
            // rather than at the connection's next status interval.
            if (plan.Synchronous)
                await SendStatusNowAsync(stream, ct);
        }
    }

    /// <summary>
    /// Applies a batch, trying again at once when PostgreSQL chose it as the victim of a deadlock or a serialization
    /// failure with local writers (or the node's other apply sessions): nothing is wrong with the data.
    /// </summary>
    private async Task<int> ApplyRetryingAsync(ApplyWriter writer, List<SourceTransaction> batch)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await writer.ApplyAsync(batch, _rowsPerSecond, CancellationToken.None);
            }
            catch (Exception e) when (attempt < 10 && Retryable(e))
            {
                log.LogDebug("subscription {Subscription}: {Error}; applying the batch again (attempt {Attempt})", plan.Name, e.Message, attempt + 1);
                await Task.Delay(TimeSpan.FromMilliseconds(20 * attempt));
            }
        }

        static bool Retryable(Exception e) =>
            (e as PostgresException ?? e.InnerException as PostgresException) is { SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure };
    }

    /// <summary>Errors about the session or the server rather than the data: nothing to pin on a transaction.</summary>
    private static bool IsConnectionLevel(PostgresException e) =>
        e.SqlState.StartsWith("08", StringComparison.Ordinal) || e.SqlState.StartsWith("57", StringComparison.Ordinal)
        || e.SqlState.StartsWith("53", StringComparison.Ordinal) || e.SqlState.StartsWith("58", StringComparison.Ordinal);

    /// <summary>
    /// A statement waited past apply_timeout for a lock: what it was applying, who holds the lock now, and what to do.
    /// Nothing of the batch committed; the next attempt starts again at its first transaction.
    /// </summary>
    private async Task<string> DescribeLockWaitAsync(Exception e, List<SourceTransaction> batch)
    {
        var pg = (e as PostgresException ?? e.InnerException as PostgresException)!;
        var tables = batch.SelectMany(t => t.Changes.Select(c => c.Relation).Concat(t.Spilled?.Relations ?? []))
            .Select(r => (r.Schema, r.Name)).Distinct().ToList();
        var holders = await LockHolders.DescribeAsync(plan.TargetConnectionString, tables, CancellationToken.None);
        var what = e is ApplyException ? e.Message.Split(["; source transaction", "; a batch of source transactions"], 2, StringSplitOptions.None)[0]
            : $"subscription {plan.Name}: applying {(batch.Count == 1 ? $"source transaction {batch[0].Xid}" : $"{batch.Count} source transactions")} failed: {pg.SqlState} {pg.MessageText}";
        return $"{what}: waited longer than apply_timeout ({plan.ApplyTimeout.TotalSeconds:0.###} s) for a lock on node {plan.ToNode}" +
               (holders.Length > 0 ? $"; {holders}" : "; the lock was released meanwhile") +
               $". End that session's transaction (or raise apply_timeout); nothing from source transaction {batch[0].Xid} committed at {batch[0].CommitLsn} on was applied, and the subscription resumes there.";
    }

    /// <summary>
    /// Names what the target refused when the applier could not pin the error on a change itself: the table from
    /// the error, the key of the transaction's change to it (when there is one), the transaction.
    /// </summary>
    private string DescribeRefusal(PostgresException e, List<SourceTransaction> batch)
    {
        var tx = batch.Count == 1 ? batch[0] : null;
        var table = e.TableName is { Length: > 0 } t ? $"{e.SchemaName}.{t}" : null;
        // PostgreSQL names no table for some errors (a value too long for its column): a transaction that wrote one table only tells.
        if (table is null && tx is not null && tx.Changes.Select(c => c.Relation.ToString()).Distinct().ToList() is [var only])
            table = only;
        var where = "";
        if (tx is not null && table is not null)
        {
            var changes = tx.Changes.Where(c => $"{c.Relation.Schema}.{c.Relation.Name}" == table).ToList();
            where = changes.Count switch
            {
                0 => $" into {table}",
                1 => $" {changes[0].Kind.ToString().ToUpperInvariant()} of {ApplyWriter.KeyText(changes[0])} into {table}",
                _ => $" one of {changes.Count} changes into {table} ({string.Join("; ", changes.Take(3).Select(ApplyWriter.KeyText))}{(changes.Count > 3 ? "; ..." : "")})",
            };
        }
        else if (table is not null)
            where = $" into {table}";
        var which = tx is not null
            ? $"source transaction {tx.Xid} committed at {tx.CommitLsn}"
            : $"one of the {batch.Count} source transactions committed from {batch[0].CommitLsn} to {batch[^1].CommitLsn} (the next attempt applies them one by one to tell which)";
        var detail = string.IsNullOrEmpty(e.Detail) ? "" : $" ({e.Detail})";
        return $"subscription {plan.Name}:{where} failed: {e.SqlState} {e.MessageText}{detail}; {which}. " +
               "Nothing from it on was applied; fix the target and the subscription resumes from this transaction.";
    }

    /// <summary>
    /// Runs beside the applier. When the subscription's tables are idle but the origin cluster is busy, no
    /// transaction reaches us and the slot would hold WAL forever: once everything received is applied, the
    /// position the origin reported in its keepalives is confirmed instead (every transaction committed before
    /// it has been sent, so nothing before it is still owed). Also declares the attempt healthy once it has been
    /// caught up for a while, which clears an error left by a failed attempt.
    /// </summary>
    private async Task WatchAsync(ChangeStream stream, CancellationToken ct)
    {
        var up = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(plan.Synchronous ? SynchronousWatchInterval : TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var seen = stream.TransactionsSeen;
                var received = stream.LastReceived;
                var caughtUp = stream.BetweenTransactions && Interlocked.Read(ref _appliedTransactions) == seen && stream.TransactionsSeen == seen;
                // Asynchronous commit: only what is flushed is confirmed, and the keepalive position only once every
                // applied transaction is flushed too.
                if (plan.AsyncCommit && await ConfirmFlushedAsync(stream, ct) < new NpgsqlLogSequenceNumber((ulong)Interlocked.Read(ref _lastWrittenEnd)))
                    caughtUp = false;
                if (!caughtUp) continue;
                if (received > stream.ConfirmedLsn)
                {
                    lock (_confirmLock) stream.Confirm(received);
                    if (plan.Synchronous)
                        await SendStatusNowAsync(stream, ct);
                }
                if (up.Elapsed >= HealthyAfter && !_healthy)
                {
                    _healthy = true;
                    if (_failing)
                    {
                        _failing = false;
                        log.LogInformation("subscription {Subscription}: streaming again", plan.Name);
                        await RecordStateAsync(WorkerState.Streaming, null, ct);
                    }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Confirms to the origin the position PostgreSQL has flushed on the target (asynchronous commit); returns it.</summary>
    private async Task<NpgsqlLogSequenceNumber> ConfirmFlushedAsync(ChangeStream stream, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(plan.TargetConnectionString);
        await conn.OpenAsync(ct);
        var flushed = await ApplyWriter.ReadProgressAsync(conn, plan.Name, ct);
        if (flushed != NpgsqlLogSequenceNumber.Invalid)
            lock (_confirmLock) stream.Confirm(flushed);
        return flushed;
    }

    /// <summary>
    /// Sends again the rows this node kept in conflicts (see <see cref="Rebroadcaster"/>), as soon as an applied
    /// transaction queued some and every few seconds for what an earlier run left; forgets old tombstones now and then.
    /// </summary>
    private async Task ResendLoopAsync(CancellationToken ct)
    {
        var resender = new Rebroadcaster(plan.TargetConnectionString, plan.Name, log);
        var sweep = Stopwatch.StartNew();
        var first = true;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (!first) await _resend.WaitAsync(ResendInterval, ct);
                first = false;
                try
                {
                    var sent = await resender.DrainAsync(ct);
                    if (sent > 0) log.LogDebug("subscription {Subscription}: sent {Count} row(s) kept in conflicts again", plan.Name, sent);
                    if (sweep.Elapsed >= TombstoneSweepInterval)
                    {
                        sweep.Restart();
                        await using var conn = new NpgsqlConnection(plan.TargetConnectionString);
                        await conn.OpenAsync(ct);
                        await Rebroadcaster.ForgetOldTombstonesAsync(conn, TombstoneRetention, ct);
                    }
                }
                catch (Exception e) when (e is NpgsqlException or NavetteException or InvalidOperationException && !ct.IsCancellationRequested)
                {
                    log.LogWarning("subscription {Subscription}: could not send rows kept in conflicts again ({Error}); retrying", plan.Name, Describe(e));
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task<string> ReadStateAsync(CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(plan.TargetConnectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT state FROM navette.subscription WHERE name = $1", conn);
        cmd.Parameters.AddWithValue(plan.Name);
        return await cmd.ExecuteScalarAsync(ct) as string
               ?? throw new NavetteException($"subscription {plan.Name} is not installed on node {plan.ToNode}; run navette apply first");
    }

    private async Task FinishCopyAsync(NpgsqlLogSequenceNumber consistent, MeshJoin join, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(plan.TargetConnectionString);
        await conn.OpenAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // The origin advance is not transactional; the state row is, and a crash between the two leaves
        // 'copying', which redoes the copy and advances again.
        await using (var advance = new NpgsqlCommand("SELECT pg_replication_origin_advance($1, $2::text::pg_lsn)", conn, tx))
        {
            advance.Parameters.AddWithValue(Sql.OriginName(plan.Name));
            advance.Parameters.AddWithValue(consistent.ToString());
            await advance.ExecuteNonQueryAsync(ct);
        }
        await using (var cmd = new NpgsqlCommand(
            "UPDATE navette.subscription SET state = 'streaming', consistent_lsn = $1::text::pg_lsn, error = NULL, updated_at = now() WHERE name = $2", conn, tx))
        {
            cmd.Parameters.AddWithValue(consistent.ToString());
            cmd.Parameters.AddWithValue(plan.Name);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await join.PositionAsync(conn, tx, ct);
        await tx.CommitAsync(ct);
    }

    private async Task SetCopyingAsync(CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(plan.TargetConnectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "UPDATE navette.subscription SET state = 'copying', updated_at = now() WHERE name = $1", conn);
        cmd.Parameters.AddWithValue(plan.Name);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Records the state shown by status. A copy that has not finished keeps its state whatever happens, since
    /// that state is what tells the next attempt to copy again.
    /// </summary>
    private async Task RecordStateAsync(string state, string? error, CancellationToken ct)
    {
        try
        {
            await using var conn = new NpgsqlConnection(plan.TargetConnectionString);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                UPDATE navette.subscription
                   SET state = CASE WHEN $2 IN ('stopped', 'failed') AND state IN ('initializing', 'copying') THEN state ELSE $2 END,
                       error = $3, error_at = CASE WHEN $3 IS NULL THEN NULL ELSE now() END, updated_at = now()
                 WHERE name = $1
                """, conn);
            cmd.Parameters.AddWithValue(plan.Name);
            cmd.Parameters.AddWithValue(state);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)error ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            await cmd.ExecuteNonQueryAsync(ct);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            log.LogDebug("subscription {Subscription}: could not record state {State}: {Error}", plan.Name, state, e.Message);
        }
    }
}
