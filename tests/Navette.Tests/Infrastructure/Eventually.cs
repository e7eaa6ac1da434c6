using System.Diagnostics;
using Navette.Cli.Demo;
using Npgsql;

namespace Navette.Tests.Infrastructure;

/// <summary>Polling for a condition that becomes true by itself (replication, restarts), with a deadline.</summary>
internal static class Eventually
{
    /// <summary>Polls <paramref name="probe"/> until <paramref name="done"/> holds; returns the last value. Probe errors count as "not yet".</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what, int pollMs = 200)
    {
        var clock = Stopwatch.StartNew();
        T? last = default;
        Exception? lastError = null;
        while (true)
        {
            try
            {
                last = await probe();
                lastError = null;
                if (done(last)) return last;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                lastError = e;
            }
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"{what}: not reached within {timeout.TotalSeconds:F0} s; last value: {last}" + (lastError is null ? "" : $"; last error: {lastError.Message}"));
            await Task.Delay(pollMs);
        }
    }

    public static Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, int pollMs = 200) =>
        ValueAsync(condition, v => v, timeout, what, pollMs);
}

/// <summary>What tests read from nodes about subscriptions and slots.</summary>
internal static class NodeQueries
{
    internal sealed record SubscriptionRow(string State, string? Error, string? OriginProgress, long RowsApplied);

    /// <summary>navette.subscription on the target (null when it has no such row).</summary>
    public static async Task<SubscriptionRow?> SubscriptionAsync(LocalCluster target, string name)
    {
        await using var conn = new NpgsqlConnection(target.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "SELECT state, error, pg_replication_origin_progress('navette_' || name, false)::text, rows_applied FROM navette.subscription WHERE name = $1", conn);
        cmd.Parameters.AddWithValue(name);
        await using var r = await cmd.ExecuteReaderAsync();
        if (!await r.ReadAsync()) return null;
        return new SubscriptionRow(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetInt64(3));
    }

    public static async Task<string?> StateAsync(LocalCluster target, string name) => (await SubscriptionAsync(target, name))?.State;

    public static async Task<string?> ErrorAsync(LocalCluster target, string name) => (await SubscriptionAsync(target, name))?.Error;

    internal sealed record SlotRow(bool Active, long UnconfirmedBytes, long RetainedBytes, string ConfirmedFlush, string RestartLsn);

    /// <summary>
    /// The subscription's slot on its origin, measured against the current WAL position (-1 and "" while a slot
    /// being created has no position yet).
    /// </summary>
    public static async Task<SlotRow?> SlotAsync(LocalCluster origin, string subscription)
    {
        await using var conn = new NpgsqlConnection(origin.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT active, coalesce((pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, -1), coalesce((pg_current_wal_lsn() - restart_lsn)::bigint, -1),
                   coalesce(confirmed_flush_lsn::text, ''), coalesce(restart_lsn::text, '')
              FROM pg_replication_slots WHERE slot_name = $1
            """, conn);
        cmd.Parameters.AddWithValue("navette_" + subscription);
        await using var r = await cmd.ExecuteReaderAsync();
        if (!await r.ReadAsync()) return null;
        return new SlotRow(r.GetBoolean(0), r.GetInt64(1), r.GetInt64(2), r.GetString(3), r.GetString(4));
    }

    public static async Task<long> CountAsync(LocalCluster node, string table) =>
        await node.ScalarAsync<long>($"SELECT count(*) FROM {table}");
}
