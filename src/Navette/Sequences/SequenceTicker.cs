using Microsoft.Extensions.Logging;
using Navette.Config;
using Npgsql;

namespace Navette.Sequences;

/// <summary>
/// While the daemon runs, writes a sequence marker every <see cref="Interval"/> on each origin of its subscriptions
/// that carry a one-way set (only when a sequence moved), so replicas' sequences follow without a <c>navette wait</c>.
/// </summary>
internal static class SequenceTicker
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    public static async Task RunAsync(NavetteConfig config, IReadOnlyCollection<string> subscriptions, ILogger log, CancellationToken ct)
    {
        var origins = config.Subscriptions.Values
            .Where(s => subscriptions.Contains(s.Name) && s.Sets.Any(n => !config.Sets[n].MultiMaster))
            .Select(s => s.From).Distinct().ToList();
        if (origins.Count == 0) return;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                foreach (var node in origins)
                {
                    try
                    {
                        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(config.Nodes[node].ToNpgsqlConnectionString())
                            { ApplicationName = "navette_sequences", Pooling = false }.ConnectionString);
                        await conn.OpenAsync(ct);
                        await SequenceMarker.WriteAsync(conn, ct);
                    }
                    catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
                    {
                        // The origin being away is the workers' business to report; the next tick tries again.
                        log.LogDebug("sequences of node {Node} not sent this time: {Error}", node, Daemon.SubscriptionWorker.Describe(e));
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }
}
