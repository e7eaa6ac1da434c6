using Microsoft.Extensions.Logging;
using Npgsql;

namespace Navette.Apply;

/// <summary>
/// Computes compare results away from the apply session, so the stream keeps moving while a range is summarised. Where
/// a request arrives, a session of its own takes a snapshot (everything before the request is committed by then, and
/// nothing after it is applied yet), then runs the summary and writes the result under that snapshot in the
/// background. At most <see cref="MaxSessions"/> at once; a further request waits for one to finish.
/// </summary>
internal sealed class CompareSessions(string connectionString, string subscription, ILogger log) : IAsyncDisposable
{
    public const int MaxSessions = 4;

    private readonly SemaphoreSlim _free = new(MaxSessions, MaxSessions);
    private readonly Stack<NpgsqlConnection> _idle = new();
    private readonly List<Task> _running = new();
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Takes the snapshot now and returns once it is taken; the statements run after, in the background.</summary>
    public async Task StartAsync(string sql, List<NpgsqlParameter> parameters, string description, CancellationToken ct)
    {
        await _free.WaitAsync(ct);
        NpgsqlConnection? conn = null;
        NpgsqlTransaction? tx = null;
        try
        {
            lock (_idle) conn = _idle.Count > 0 ? _idle.Pop() : null;
            conn ??= await OpenAsync(ct);
            tx = await conn.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
            await using (var take = new NpgsqlCommand("SELECT 1", conn, tx)) await take.ExecuteScalarAsync(ct);
        }
        catch
        {
            if (tx is not null) await tx.DisposeAsync();
            if (conn is not null) await conn.DisposeAsync();
            _free.Release();
            throw;
        }
        var task = RunAsync(conn, tx, sql, parameters, description);
        lock (_running)
        {
            _running.RemoveAll(t => t.IsCompleted);
            _running.Add(task);
        }
    }

    private async Task RunAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, List<NpgsqlParameter> parameters, string description)
    {
        var keep = false;
        try
        {
            await using (var cmd = new NpgsqlCommand(sql, conn, tx))
            {
                cmd.Parameters.AddRange(parameters.ToArray());
                await cmd.ExecuteNonQueryAsync(_stopping.Token);
            }
            await using (var notify = new NpgsqlCommand(Markers.ResultSignal.NotifySql, conn, tx)) await notify.ExecuteNonQueryAsync(_stopping.Token);
            await tx.CommitAsync(_stopping.Token);
            keep = true;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException)
        {
            if (!_stopping.IsCancellationRequested)
                log.LogWarning("subscription {Subscription}: {Request} failed on the target: {Error}; the compare asking for it will time out and can be run again",
                    subscription, description, Daemon.SubscriptionWorker.Describe(e));
        }
        finally
        {
            await tx.DisposeAsync();
            if (keep) lock (_idle) _idle.Push(conn);
            else await conn.DisposeAsync();
            _free.Release();
        }
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString)
        {
            ApplicationName = Sql.ApplicationName(subscription) + "_compare",
            Options = Capture.ChangeStream.SessionOptions,
            Pooling = false,
            CommandTimeout = 0,
        }.ConnectionString);
        await conn.OpenAsync(ct);
        return conn;
    }

    public async ValueTask DisposeAsync()
    {
        Task[] running;
        lock (_running) running = _running.ToArray();
        // Results being written are let finish for a moment: a requester is waiting for them.
        try { await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (TimeoutException) { }
        await _stopping.CancelAsync();
        try { await Task.WhenAll(running); }
        catch (Exception) { }
        lock (_idle)
            while (_idle.Count > 0) _idle.Pop().Dispose();
        _stopping.Dispose();
    }
}
