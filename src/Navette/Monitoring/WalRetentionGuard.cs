using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Daemon;
using Navette.Status;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Monitoring;

/// <summary>
/// The hard limit of <c>wal_retention</c>: a slot that keeps more WAL than that on its origin (a replica down for
/// days, a worker stuck on a refused change) is dropped, loudly, before the origin's disk fills up. The subscription
/// is then stopped in state <c>failed</c> with an error naming <c>navette resync</c>, and the daemon does not start
/// it again: its slot is gone, so streaming cannot resume without copying its tables anew.
/// </summary>
internal sealed class WalRetentionGuard(NavetteConfig config, DaemonMonitor monitor, Func<string, Task> stopWorker, ILogger log)
{
    /// <summary>How the recorded error starts; the daemon recognises a dropped subscription by it.</summary>
    public const string ErrorPrefix = "WAL retention limit exceeded";

    private static readonly TimeSpan RecordRetry = TimeSpan.FromSeconds(5);

    private readonly List<Task> _recording = [];

    public async Task EnforceAsync(IReadOnlyList<SubscriptionStatus> rows, CancellationToken ct)
    {
        foreach (var s in rows)
        {
            if (!monitor.Running.Contains(s.Name) || monitor.Dropped.ContainsKey(s.Name)) continue;
            if (s.WalRetentionLimitBytes is not { } limit || s.RetainedWalBytes is not { } retained || retained <= limit) continue;
            await DropAsync(config.Subscriptions[s.Name], retained, limit, ct);
        }
    }

    private async Task DropAsync(SubscriptionConfig sub, long retained, long limit, CancellationToken ct)
    {
        var slot = Sql.SlotName(sub.Name);
        var message = $"{ErrorPrefix}: slot {slot} retained {ConfigUnits.FormatSize(retained)} of WAL on {sub.From}, over wal_retention.limit "
                      + $"({ConfigUnits.FormatSize(limit)}); the slot was dropped so that {sub.From}'s disk does not fill up. The subscription is stopped "
                      + $"and its replica {sub.To} no longer receives changes: run navette resync {sub.Name} to copy its tables again and resume streaming";
        log.LogCritical("subscription {Subscription}: {Message}", sub.Name, message);
        monitor.MarkDropped(sub.Name, message);
        await stopWorker(sub.Name);
        await DropSlotAsync(config.Nodes[sub.From].ToNpgsqlConnectionString(), slot, ct);
        // The replica may be the reason the WAL piled up (it is down): the failed state is recorded once it is back.
        lock (_recording)
            _recording.Add(Task.Run(() => RecordUntilDoneAsync(sub, message, ct), CancellationToken.None));
    }

    private async Task DropSlotAsync(string origin, string slot, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var conn = new NpgsqlConnection(origin);
                await conn.OpenAsync(ct);
                // A walsender that has not yet noticed its client went still holds the slot.
                await using var batch = new NpgsqlBatch(conn)
                {
                    BatchCommands =
                    {
                        new("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL") { Parameters = { new() { Value = slot } } },
                        new("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1") { Parameters = { new() { Value = slot } } },
                    },
                };
                await batch.ExecuteNonQueryAsync(ct);
                log.LogError("replication slot {Slot} dropped by the WAL retention guard", slot);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 20)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                log.LogError("WAL retention guard: could not drop slot {Slot}: {Error}; retrying", slot, SubscriptionWorker.Describe(e));
                await Task.Delay(RecordRetry, ct);
            }
        }
    }

    private async Task RecordUntilDoneAsync(SubscriptionConfig sub, string message, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var conn = new NpgsqlConnection(config.Nodes[sub.To].ToNpgsqlConnectionString());
                await conn.OpenAsync(ct);
                await using var cmd = new NpgsqlCommand(
                    "UPDATE navette.subscription SET state = 'failed', error = $2, error_at = now(), updated_at = now() WHERE name = $1", conn);
                cmd.Parameters.AddWithValue(sub.Name);
                cmd.Parameters.Add(new NpgsqlParameter { Value = message, NpgsqlDbType = NpgsqlDbType.Text });
                await cmd.ExecuteNonQueryAsync(ct);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                log.LogDebug("subscription {Subscription}: could not record the dropped slot yet: {Error}", sub.Name, e.Message);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try { await Task.Delay(RecordRetry, ct); } catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>Waits for the failed states still being recorded (the daemon is stopping).</summary>
    public async Task DrainAsync()
    {
        Task[] pending;
        lock (_recording) pending = [.. _recording];
        await Task.WhenAll(pending);
    }

    /// <summary>The recorded error when the guard dropped this subscription's slot in an earlier run, else null.</summary>
    public static async Task<string?> DroppedEarlierAsync(NavetteConfig config, SubscriptionConfig sub, CancellationToken ct)
    {
        try
        {
            await using var conn = new NpgsqlConnection(config.Nodes[sub.To].ToNpgsqlConnectionString());
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand(
                "SELECT error FROM navette.subscription WHERE name = $1 AND state = 'failed' AND starts_with(error, $2)", conn);
            cmd.Parameters.AddWithValue(sub.Name);
            cmd.Parameters.AddWithValue(ErrorPrefix);
            return await cmd.ExecuteScalarAsync(ct) as string;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            // Unreachable or not installed: the worker reports that itself.
            return null;
        }
    }
}
