using Microsoft.Extensions.Logging;
using Npgsql;

namespace Navette.Sync;

/// <summary>One table's progress as the copy knows it at a given moment.</summary>
internal sealed record CopyProgressRow(string Table, long Rows, long Bytes, bool Started, bool Finished);

/// <summary>
/// Every 2 s while a copy runs: logs its progress and writes it to <c>navette.copy_progress</c> on the target, where
/// <c>navette status</c> (and its <c>--watch</c> progress bars), the metrics and the dashboard read it. Writing
/// progress is best effort: a failed write is logged at debug level and never fails the copy.
/// </summary>
internal sealed class CopyProgressReporter : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private readonly string _subscription;
    private readonly string _targetConnectionString;
    private readonly Func<IReadOnlyList<CopyProgressRow>> _snapshot;
    private readonly Action _logProgress;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public CopyProgressReporter(string subscription, string targetConnectionString, Func<IReadOnlyList<CopyProgressRow>> snapshot, Action logProgress, ILogger log)
    {
        _subscription = subscription;
        _targetConnectionString = targetConnectionString;
        _snapshot = snapshot;
        _logProgress = logProgress;
        _log = log;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    private async Task RunAsync(CancellationToken ct)
    {
        await WriteAsync(replace: true, ct);
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                _logProgress();
                await WriteAsync(replace: false, ct);
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task WriteAsync(bool replace, CancellationToken ct)
    {
        var rows = _snapshot();
        try
        {
            await using var conn = new NpgsqlConnection(_targetConnectionString);
            await conn.OpenAsync(ct);
            await using var batch = new NpgsqlBatch(conn);
            if (replace)
            {
                var delete = new NpgsqlBatchCommand("DELETE FROM navette.copy_progress WHERE subscription = $1");
                delete.Parameters.AddWithValue(_subscription);
                batch.BatchCommands.Add(delete);
            }
            var upsert = new NpgsqlBatchCommand("""
                INSERT INTO navette.copy_progress AS p (subscription, table_name, rows_copied, bytes_copied, started_at, finished_at)
                SELECT $1, t, r, b, CASE WHEN s THEN now() END, CASE WHEN f THEN now() END
                  FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bool[], $6::bool[]) AS u(t, r, b, s, f)
                ON CONFLICT (subscription, table_name) DO UPDATE
                   SET rows_copied = excluded.rows_copied, bytes_copied = excluded.bytes_copied,
                       started_at = coalesce(p.started_at, excluded.started_at), finished_at = coalesce(p.finished_at, excluded.finished_at)
                """);
            upsert.Parameters.AddWithValue(_subscription);
            upsert.Parameters.AddWithValue(rows.Select(r => r.Table).ToArray());
            upsert.Parameters.AddWithValue(rows.Select(r => r.Rows).ToArray());
            upsert.Parameters.AddWithValue(rows.Select(r => r.Bytes).ToArray());
            upsert.Parameters.AddWithValue(rows.Select(r => r.Started).ToArray());
            upsert.Parameters.AddWithValue(rows.Select(r => r.Finished).ToArray());
            batch.BatchCommands.Add(upsert);
            await batch.ExecuteNonQueryAsync(ct);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException || e is OperationCanceledException && ct.IsCancellationRequested)
        {
            _log.LogDebug("subscription {Subscription}: could not record copy progress: {Error}", _subscription, e.Message);
        }
    }

    /// <summary>Stops the reports and writes the final figures (the tables' finished marks included).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await WriteAsync(replace: false, timeout.Token);
        _stop.Dispose();
    }
}
