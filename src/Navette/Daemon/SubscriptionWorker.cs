using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Navette.Apply;
using Navette.Capture;
using Navette.Sync;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Daemon;

/// <summary>
/// Runs one subscription: initial copy when it has not happened yet, then streaming. A failure stops the
/// attempt with nothing half-applied; <see cref="RunSupervisedAsync"/> retries with exponential backoff and
/// every attempt resumes from the replication origin's progress on the target.
/// </summary>
internal sealed class SubscriptionWorker(SubscriptionPlan plan, ILogger log)
{
    private const int MaxTransactionsPerBatch = 2000;
    private const int MaxChangesPerBatch = 20_000;
    private const long MaxBytesPerBatch = 64L << 20;
    private const int ChannelCapacity = 10_000;

    private long _appliedTransactions;
    private double _rowsPerSecond;

    public SubscriptionPlan Plan => plan;
    public int Restarts { get; private set; }
    public string? LastError { get; private set; }

    public async Task RunSupervisedAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!ct.IsCancellationRequested)
        {
            var started = Stopwatch.StartNew();
            try
            {
                await RunOnceAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                Restarts++;
                LastError = Describe(e);
                if (started.Elapsed > TimeSpan.FromMinutes(1)) backoff = TimeSpan.FromSeconds(1);
                log.LogError("subscription {Subscription} ({From} -> {To}) failed: {Error}; retrying in {Backoff} s",
                    plan.Name, plan.FromNode, plan.ToNode, LastError, backoff.TotalSeconds);
                if (e is not NavetteException)
                    log.LogDebug(e, "subscription {Subscription}: failure detail", plan.Name);
                await RecordStateAsync(WorkerState.Failed, LastError, CancellationToken.None);
                try { await Task.Delay(backoff, ct); } catch (OperationCanceledException) { break; }
                backoff = TimeSpan.FromSeconds(Math.Min(backoff.TotalSeconds * 2, 60));
            }
        }
        await RecordStateAsync(WorkerState.Stopped, null, CancellationToken.None);
        log.LogInformation("subscription {Subscription}: stopped", plan.Name);
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
        if (state is WorkerState.Initializing or WorkerState.Copying && plan.InitialCopy)
        {
            await RecordStateAsync(WorkerState.Copying, null, ct);
            var copy = new InitialCopy(plan.Name, plan.SourceConnectionString, plan.TargetConnectionString, plan.Publications, plan.CopyWorkers, log);
            var consistent = await copy.RunAsync(resuming: state == WorkerState.Copying, ct);
            await FinishCopyAsync(consistent, ct);
        }
        await StreamAsync(ct);
    }

    private async Task StreamAsync(CancellationToken ct)
    {
        await using var writer = await ApplyWriter.OpenAsync(plan.TargetConnectionString, plan.Name, log, ct);
        NpgsqlLogSequenceNumber start;
        await using (var conn = new NpgsqlConnection(plan.TargetConnectionString))
        {
            await conn.OpenAsync(ct);
            start = await ApplyWriter.ReadProgressAsync(conn, plan.Name, ct);
        }
        await using var stream = await ChangeStream.OpenAsync(plan.SourceConnectionString, plan.Name, plan.Publications, plan.Forward, log, ct);
        log.LogInformation("subscription {Subscription}: streaming {From} -> {To} from {Lsn}", plan.Name, plan.FromNode, plan.ToNode, start);
        await RecordStateAsync(WorkerState.Streaming, null, ct);

        var channel = Channel.CreateBounded<SourceTransaction>(new BoundedChannelOptions(ChannelCapacity) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _appliedTransactions = 0;
        var reader = Task.Run(async () =>
        {
            try { await stream.RunAsync(start, channel.Writer, stop.Token); channel.Writer.TryComplete(); }
            catch (Exception e) { channel.Writer.TryComplete(e); throw; }
        }, CancellationToken.None);
        var applier = Task.Run(() => ApplyLoopAsync(channel.Reader, writer, stream, stop.Token), CancellationToken.None);
        var idle = Task.Run(() => ConfirmWhileIdleAsync(stream, stop.Token), CancellationToken.None);

        var first = await Task.WhenAny(reader, applier);
        await stop.CancelAsync();
        try { await Task.WhenAll(reader, applier, idle); }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        catch when (first.IsFaulted)
        {
            // The first failure is the cause; the other task only stopped because of it.
        }
        if (first.IsFaulted) await first; // rethrows the cause
        if (!ct.IsCancellationRequested)
            throw new NavetteException("the origin ended the replication stream");
    }

    private async Task ApplyLoopAsync(ChannelReader<SourceTransaction> input, ApplyWriter writer, ChangeStream stream, CancellationToken ct)
    {
        var batch = new List<SourceTransaction>(MaxTransactionsPerBatch);
        var clock = Stopwatch.StartNew();
        while (await input.WaitToReadAsync(ct))
        {
            batch.Clear();
            var changes = 0;
            long bytes = 0;
            while (batch.Count < MaxTransactionsPerBatch && changes < MaxChangesPerBatch && bytes < MaxBytesPerBatch && input.TryRead(out var tx))
            {
                batch.Add(tx);
                changes += tx.Changes.Count;
                bytes += tx.ApproximateBytes;
            }
            if (batch.Count == 0) continue;
            if (changes > 0)
            {
                var t0 = clock.Elapsed;
                // A batch is applied to the end even when shutdown is requested: it commits whole or not at all.
                var rows = await writer.ApplyAsync(batch, _rowsPerSecond, CancellationToken.None);
                var secs = Math.Max((clock.Elapsed - t0).TotalSeconds, 1e-3);
                _rowsPerSecond = _rowsPerSecond == 0 ? rows / secs : 0.8 * _rowsPerSecond + 0.2 * (rows / secs);
                log.LogDebug("subscription {Subscription}: applied {Txns} transactions, {Rows} rows up to {Lsn}", plan.Name, batch.Count, rows, batch[^1].EndLsn);
            }
            stream.Confirm(batch[^1].EndLsn);
            Interlocked.Add(ref _appliedTransactions, batch.Count);
        }
    }

    /// <summary>
    /// When the subscription's tables are idle but the origin cluster is busy, no transaction reaches us and the
    /// slot would hold WAL forever. Once everything received is applied, the position the origin reported in
    /// its keepalives is confirmed instead.
    /// </summary>
    private async Task ConfirmWhileIdleAsync(ChangeStream stream, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var seen = stream.TransactionsSeen;
                var received = stream.LastReceived;
                if (stream.BetweenTransactions && Interlocked.Read(ref _appliedTransactions) == seen && stream.TransactionsSeen == seen
                    && received > stream.ConfirmedLsn)
                    stream.Confirm(received);
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

    private async Task FinishCopyAsync(NpgsqlLogSequenceNumber consistent, CancellationToken ct)
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
        await tx.CommitAsync(ct);
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
