using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Navette.Cli.Demo;
using Npgsql;

namespace Navette.Tests.Synchronous;

/// <summary>What the synchronous replication tests share: one-row commits, reads of the origin's wait state, captured logs.</summary>
internal static class SynchronousKit
{
    public const string Schema = "CREATE TABLE public.items (id int PRIMARY KEY, note text NOT NULL)";

    /// <summary>One autocommit INSERT on its own connection; returns when the origin's COMMIT returns.</summary>
    public static async Task InsertAsync(LocalCluster origin, int id, CancellationToken ct = default)
    {
        await using var conn = new NpgsqlConnection(origin.ConnectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("INSERT INTO public.items (id, note) VALUES ($1, 'row ' || $1)", conn);
        cmd.Parameters.AddWithValue(id);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Reads the row at once (no polling): a synchronous commit that returned must already be there.</summary>
    public static async Task<bool> HasRowAsync(LocalCluster node, int id)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM public.items WHERE id = $1 AND note = 'row ' || $1", conn);
        cmd.Parameters.AddWithValue(id);
        return (long)(await cmd.ExecuteScalarAsync())! == 1;
    }

    /// <summary>Sessions on the origin waiting for synchronous replication in their COMMIT.</summary>
    public static async Task<long> WaitingCommitsAsync(LocalCluster origin) =>
        await origin.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");

    /// <summary>Until the subscription's walsender counts for synchronous replication (sync_state sync, or quorum under ANY).</summary>
    public static Task WaitSynchronousAsync(LocalCluster origin, string subscription) =>
        Infrastructure.Eventually.TrueAsync(async () => await origin.ScalarAsync<string>(
                $"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'navette_{subscription}'") is "sync" or "quorum",
            TimeSpan.FromSeconds(60), $"the walsender of {subscription} to be synchronous");

    public static async Task<string> StandbyNamesAsync(LocalCluster node)
    {
        // A fresh session: the pooled ones may not have read the reloaded configuration yet.
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT current_setting('synchronous_standby_names')", conn);
        return (string)(await cmd.ExecuteScalarAsync())!;
    }
}

/// <summary>Keeps every log line (with its time) so that a test can assert on what the daemon said and when.</summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    public ConcurrentQueue<(DateTime At, LogLevel Level, string Category, string Message)> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    public (DateTime At, string Message)? First(string contains) =>
        Lines.Where(l => l.Message.Contains(contains, StringComparison.Ordinal)).Select(l => ((DateTime, string)?)(l.At, l.Message)).FirstOrDefault();

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Lines.Enqueue((DateTime.UtcNow, logLevel, category, formatter(state, exception)));
    }
}
