using System.Globalization;
using System.Text.Json;
using Navette.Cli.Demo;
using Navette.Config;
using Navette.Processes;
using Navette.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Standby;

/// <summary>
/// A primary, a configuration file naming it, and the standbys the tests make of it with the real
/// <c>navette standby</c> commands (separate processes, as an operator runs them). Standbys live under
/// <see cref="TestClusters.RootDir"/> and are stopped and deleted with the harness.
/// </summary>
internal sealed class StandbyHarness : IAsyncDisposable
{
    public const string FileHeader = "# written by the standby tests: this line must survive every edit\n";
    private static readonly TimeSpan CliTimeout = TimeSpan.FromMinutes(4);
    private readonly ITestOutputHelper _output;
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];

    private StandbyHarness(ITestOutputHelper output, string primaryName, LocalCluster primary)
    {
        _output = output;
        PrimaryName = primaryName;
        Primary = primary;
        ConfigPath = Path.Combine(TestClusters.RootDir, $"navette-standby-{_id}.yaml");
        File.WriteAllText(ConfigPath, $"{FileHeader}nodes:\n  {primaryName}:\n    conninfo: \"{primary.ConnInfo}\"\n");
    }

    public string PrimaryName { get; }

    public LocalCluster Primary { get; }

    public string ConfigPath { get; }

    /// <summary>Standbys made so far, and servers that changed role (the promoted one stays here).</summary>
    public Dictionary<string, LocalCluster> Standbys { get; } = new(StringComparer.Ordinal);

    public string Archive => Path.Combine(TestClusters.RootDir, $"archive-{_id}");

    public NavetteConfig Config => ConfigLoader.Load(ConfigPath);

    /// <summary>
    /// Starts the primary with the ledger schema and <paramref name="seedRows"/> rows. <paramref name="rewindable"/>:
    /// wal_log_hints and full_page_writes on, which pg_rewind needs (the fixture's default leaves full_page_writes off).
    /// </summary>
    public static async Task<StandbyHarness> StartAsync(ITestOutputHelper output, int seedRows, bool rewindable = false, IDictionary<string, string>? settings = null)
    {
        var options = new LocalClusterOptions();
        if (rewindable)
        {
            options.Settings["wal_log_hints"] = "on";
            options.Settings["full_page_writes"] = "on";
        }

        foreach (var (k, v) in settings ?? new Dictionary<string, string>())
            options.Settings[k] = v;
        var primary = await TestClusters.StartAsync("primary", options);
        await primary.ExecuteAsync(LedgerWorkload.OriginSchema);
        await LedgerWorkload.SeedAsync(primary, seedRows);
        return new StandbyHarness(output, "paris", primary);
    }

    public Task<CliResult> NavetteAsync(params string[] args) => NavetteProcess.RunAsync(_output, CliTimeout, [.. args, "-c", ConfigPath]);

    /// <summary>Runs <c>navette standby create</c> (retrying on another port if one is taken meanwhile) and returns the standby.</summary>
    public async Task<LocalCluster> CreateAsync(string name, params string[] options)
    {
        for (var attempt = 1; ; attempt++)
        {
            var pgdata = Path.Combine(TestClusters.RootDir, $"{name}-{_id}-{attempt}");
            var port = PgProcesses.FindFreePort();
            var result = await NavetteAsync(["standby", "create", "--from", PrimaryName, "--name", name, "--pgdata", pgdata,
                "--port", port.ToString(CultureInfo.InvariantCulture), .. options]);
            if (result.ExitCode == 0)
            {
                var standby = TestClusters.Attach(pgdata, port);
                Standbys[name] = standby;
                return standby;
            }

            var portTaken = result.StdErr.Contains("Address already in use", StringComparison.Ordinal)
                            || result.StdErr.Contains("already in use on this machine", StringComparison.Ordinal);
            if (!portTaken || attempt == 3)
                Assert.Fail($"navette standby create {name} failed:\n{result}");
            await TestClusters.Attach(pgdata, port).DisposeAsync();
        }
    }

    /// <summary><c>navette standby status --json</c>, the entry of one standby.</summary>
    public async Task<JsonElement> StatusAsync(string name)
    {
        var result = await NavetteAsync("standby", "status", "--json");
        Assert.True(result.ExitCode is 0 or 1, result.ToString());
        using var doc = JsonDocument.Parse(result.StdOut);
        return doc.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name).Clone();
    }

    /// <summary>Waits until the standby replayed everything the primary has written (hot standbys only).</summary>
    public static async Task WaitReplayedAsync(LocalCluster primary, LocalCluster standby, TimeSpan timeout)
    {
        var target = await primary.ScalarAsync<NpgsqlLogSequenceNumber>("SELECT pg_current_wal_flush_lsn()");
        await Eventually.TrueAsync(async () => (ulong)await standby.ScalarAsync<NpgsqlLogSequenceNumber>("SELECT pg_last_wal_replay_lsn()") >= (ulong)target,
            timeout, $"{standby.Name} to replay up to {target}");
    }

    /// <summary>
    /// The ledger's ids are 1, 2, 3... without holes on the primary: a server that holds every row committed up to
    /// <paramref name="committedBefore"/> and nothing else than the primary's rows has a gapless prefix of them.
    /// </summary>
    public static async Task AssertLedgerPrefixAsync(LocalCluster primary, LocalCluster other, long committedBefore)
    {
        var mine = await LedgerRowsAsync(other);
        Assert.True(mine.Count >= committedBefore, $"{other.Name} has {mine.Count} ledger rows; {committedBefore} were committed before");
        var theirs = await LedgerRowsAsync(primary, mine.Count);
        Assert.Equal(Enumerable.Range(1, mine.Count).Select(i => (long)i), mine.Select(r => r.Id));
        Assert.Equal(theirs, mine);
    }

    private static async Task<List<(long Id, int Account, long Amount)>> LedgerRowsAsync(LocalCluster node, int? limit = null)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT id, account, amount FROM ledger ORDER BY id {(limit is { } l ? "LIMIT " + l : "")}", conn);
        var rows = new List<(long, int, long)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
            rows.Add((r.GetInt64(0), r.GetInt32(1), r.GetInt64(2)));
        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var s in Standbys.Values)
            await s.DisposeAsync();
        await Primary.DisposeAsync();
        LocalClusterFs.DeleteDirectoryQuietly(Archive);
        try { File.Delete(ConfigPath); } catch (IOException) { }
    }
}
