using System.Text;
using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>
/// An origin and a replica with the same schema, one subscription replicating the listed tables, and the
/// daemon running: rows written to the origin before <see cref="StartReplicationAsync"/> go through the
/// initial copy, rows written after it through the stream.
/// </summary>
internal sealed class ApplyScenario : IAsyncDisposable
{
    private readonly ReplicationHarness _h;

    private ApplyScenario(ReplicationHarness h) => _h = h;

    public LocalCluster Origin => _h["origin"];

    public LocalCluster Replica => _h["replica"];

    /// <summary>Starts both nodes and runs <paramref name="schemaSql"/> on each.</summary>
    public static async Task<ApplyScenario> StartAsync(ITestOutputHelper output, string schemaSql)
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        try
        {
            await h.OnAllAsync(schemaSql);
        }
        catch
        {
            await h.DisposeAsync();
            throw;
        }
        return new ApplyScenario(h);
    }

    /// <summary>Changes a node's defaults (ALTER SYSTEM, then reload) for every new session.</summary>
    public static async Task SetDefaultsAsync(LocalCluster node, params (string Name, string Value)[] settings)
    {
        foreach (var (name, value) in settings)
            await node.ExecuteAsync($"ALTER SYSTEM SET {name} = '{value.Replace("'", "''")}'");
        await node.ExecuteAsync("SELECT pg_reload_conf()");
        // The reload is signalled, not waited for: wait until a session sees it.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var check = $"SELECT count(*) FROM pg_settings WHERE lower(name) = lower('{settings[^1].Name}') AND source = 'configuration file'";
        while (await node.ScalarAsync<long>(check) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the reload of {settings[^1].Name} did not take effect");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Publishes <paramref name="tables"/> (entries as written in the YAML file, e.g. <c>public.t</c> or
    /// <c>"My Schema"."T"</c>), runs navette apply, starts the daemon and waits for the initial copy.
    /// </summary>
    public async Task StartReplicationAsync(params string[] tables)
    {
        var sb = new StringBuilder("sets:\n  s:\n    tables:\n");
        foreach (var t in tables) sb.Append("      - '").Append(t.Replace("'", "''")).Append("'\n");
        sb.Append("subscriptions:\n  origin_to_replica: { from: origin, to: replica, sets: [s] }\n");
        _h.WriteConfig(sb.ToString());
        await _h.ApplyAsync();
        _h.StartDaemon();
        await _h.WaitCaughtUpAsync();
    }

    public Task WaitCaughtUpAsync(double seconds = 90) => _h.WaitCaughtUpAsync(seconds);

    /// <summary>
    /// Waits for the replica, then asserts each table holds the same rows on both nodes (at least
    /// <c>MinRows</c>), compared on their whole text form.
    /// </summary>
    public async Task AssertReplicatedAsync(params (string Table, int MinRows)[] tables)
    {
        await _h.WaitCaughtUpAsync();
        foreach (var (table, min) in tables)
        {
            var a = await RowsAsync(Origin, table);
            var b = await RowsAsync(Replica, table);
            Assert.True(a.Count >= min, $"{table}: expected at least {min} rows on the origin, found {a.Count}");
            if (a.SequenceEqual(b)) continue;
            static string Show(IEnumerable<string> rows) => string.Join(" | ", rows.Take(5).Select(r => r.Length > 300 ? r[..300] + "..." : r));
            Assert.Fail($"{table} differs: origin {a.Count} rows, replica {b.Count} rows; " +
                        $"missing on replica: [{Show(a.Except(b))}]; extra on replica: [{Show(b.Except(a))}]");
        }
    }

    /// <summary>
    /// The rows' text form with every setting that shapes it pinned, so nodes configured differently still
    /// compare (the tests give them different defaults on purpose).
    /// </summary>
    private static async Task<List<string>> RowsAsync(LocalCluster node, string table)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"""
            SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3;
            SET bytea_output = 'hex'; SET lc_monetary = 'C';
            SELECT row_image::text FROM {table} AS row_image ORDER BY 1
            """, conn);
        var rows = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add(r.GetString(0));
        return rows;
    }

    public ValueTask DisposeAsync() => _h.DisposeAsync();
}
