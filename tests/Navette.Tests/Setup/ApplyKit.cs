using System.Text;
using Microsoft.Extensions.Logging;
using Navette.Cli.Demo;
using Navette.Config;
using Navette.Setup;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>
/// Runs <c>navette apply</c> against clusters with conninfos a test chooses (other roles, passwords, dead ports),
/// and reads back what apply left on a node.
/// </summary>
internal sealed class ApplyKit(ITestOutputHelper output) : IDisposable
{
    private const string Header = "navette apply found ";
    private readonly ILoggerFactory _logs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Information).AddProvider(new TestOutputLoggerProvider(output)));

    public ILoggerFactory Logs => _logs;

    public string ConfigPath { get; } = Path.Combine(TestClusters.RootDir, $"apply-{Guid.NewGuid():N}.yaml");

    /// <summary>Writes and loads a configuration whose nodes section lists <paramref name="nodes"/> (name, conninfo).</summary>
    public NavetteConfig Config(IEnumerable<(string Name, string ConnInfo)> nodes, string rest)
    {
        var sb = new StringBuilder("nodes:\n");
        foreach (var (name, conninfo) in nodes)
            sb.Append($"  {name}:\n    conninfo: \"{conninfo}\"\n");
        sb.Append(rest);
        File.WriteAllText(ConfigPath, sb.ToString());
        return ConfigLoader.Load(ConfigPath);
    }

    public async Task<IReadOnlyList<string>> ApplyAsync(NavetteConfig config)
    {
        var actions = await new Reconciler(config, _logs.CreateLogger("apply")).RunAsync(CancellationToken.None);
        foreach (var a in actions) output.WriteLine("apply: " + a);
        return actions;
    }

    /// <summary>Runs apply expecting it to refuse; returns the problems it listed (checking the count it announced).</summary>
    public async Task<List<string>> ProblemsAsync(NavetteConfig config)
    {
        var e = await Assert.ThrowsAsync<NavetteException>(() => ApplyAsync(config));
        return Problems(e);
    }

    public static List<string> Problems(NavetteException e)
    {
        var lines = e.Message.Split('\n');
        Assert.StartsWith(Header, lines[0]);
        var count = int.Parse(lines[0][Header.Length..lines[0].IndexOf(' ', Header.Length)], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"{Header}{count} problem(s); nothing was changed:", lines[0]);
        var problems = lines.Skip(1).Select(l => l.StartsWith("  - ", StringComparison.Ordinal) ? l[4..] : throw new Xunit.Sdk.XunitException("unexpected line: " + l)).ToList();
        Assert.Equal(count, problems.Count);
        return problems;
    }

    /// <summary>Asserts the problems are exactly <paramref name="expected"/>, in any order, showing both lists on failure.</summary>
    public static void AssertProblems(IReadOnlyCollection<string> actual, params string[] expected)
    {
        var missing = expected.Except(actual).ToList();
        var extra = actual.Except(expected).ToList();
        if (missing.Count == 0 && extra.Count == 0 && actual.Count == expected.Length) return;
        Assert.Fail("problems differ.\nexpected but not reported:\n  " + string.Join("\n  ", missing) + "\nreported but not expected:\n  " + string.Join("\n  ", extra));
    }

    /// <summary>Asserts apply left no trace on the node: no navette schema, publication, slot or replication origin.</summary>
    public static async Task AssertUntouchedAsync(LocalCluster node)
    {
        Assert.Equal(0L, await node.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'navette'"));
        Assert.Equal(0L, await node.ScalarAsync<long>("SELECT count(*) FROM pg_publication WHERE pubname LIKE 'navette%'"));
        Assert.Equal(0L, await node.ScalarAsync<long>("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'navette%'"));
        Assert.Equal(0L, await node.ScalarAsync<long>("SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'navette%'"));
    }

    public static async Task<List<string>> StringsAsync(LocalCluster node, string sql)
    {
        await using var cmd = node.DataSource.CreateCommand(sql);
        await using var r = await cmd.ExecuteReaderAsync();
        var result = new List<string>();
        while (await r.ReadAsync()) result.Add(r.IsDBNull(0) ? "<null>" : r.GetValue(0).ToString()!);
        return result;
    }

    /// <summary>Starts clusters in parallel, each with its own settings (null: the defaults).</summary>
    public static async Task<LocalCluster[]> StartAsync(params (string Name, Dictionary<string, string>? Settings)[] nodes) =>
        await Task.WhenAll(nodes.Select(n => TestClusters.StartAsync(n.Name,
            n.Settings is null ? null : new LocalClusterOptions { Settings = new Dictionary<string, string>(n.Settings, StringComparer.OrdinalIgnoreCase) })));

    /// <summary>Makes TCP logins to the cluster check passwords (SCRAM) for every role but postgres, which stays trusted.</summary>
    public static async Task RequirePasswordsAsync(LocalCluster node)
    {
        var hba = Path.Combine(node.DataDir, "pg_hba.conf");
        await File.WriteAllTextAsync(hba, """
            local all all trust
            host all postgres 127.0.0.1/32 trust
            host all all 127.0.0.1/32 scram-sha-256
            """ + "\n");
        await node.ExecuteAsync("SELECT pg_reload_conf()");
        // The reload is asynchronous: wait until the login of an unknown role is refused for its password
        // (28P01) rather than because the role does not exist (28000, what trust says).
        var probe = new NpgsqlConnectionStringBuilder(node.ConnectionString) { Username = "nobody_probe", Password = "x", Pooling = false }.ConnectionString;
        for (var i = 0; i < 100; i++)
        {
            try
            {
                await using var conn = new NpgsqlConnection(probe);
                await conn.OpenAsync();
            }
            catch (PostgresException e) when (e.SqlState == "28P01")
            {
                return;
            }
            catch (PostgresException)
            {
            }
            await Task.Delay(50);
        }
        Assert.Fail("pg_hba.conf was not reloaded");
    }

    public static async Task WaitSlotActiveAsync(LocalCluster node, string slot)
    {
        for (var i = 0; i < 400; i++)
        {
            if (await node.ScalarAsync<bool>($"SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'), false)")) return;
            await Task.Delay(50);
        }
        Assert.Fail($"slot {slot} never became active");
    }

    public static async Task WaitSlotInactiveAsync(LocalCluster node, string slot)
    {
        for (var i = 0; i < 200; i++)
        {
            if (!await node.ScalarAsync<bool>($"SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'), false)")) return;
            await Task.Delay(50);
        }
        Assert.Fail($"slot {slot} stayed active");
    }

    public static async Task<NpgsqlConnection> OpenAsync(LocalCluster node)
    {
        var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    /// <summary>Runs the daemon in-process until the returned handle is disposed.</summary>
    public IAsyncDisposable RunDaemon(NavetteConfig config)
    {
        var stop = new CancellationTokenSource();
        var daemon = new Navette.Daemon.ReplicationDaemon(config, _logs);
        var run = Task.Run(() => daemon.RunAsync(new Navette.Daemon.DaemonOptions(), stop.Token));
        return new DaemonHandle(stop, run);
    }

    private sealed class DaemonHandle(CancellationTokenSource stop, Task run) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            try { await run.WaitAsync(TimeSpan.FromSeconds(60)); } catch (OperationCanceledException) { }
            stop.Dispose();
        }
    }

    public static async Task WaitCaughtUpAsync(NavetteConfig config, double seconds = 90)
    {
        var pending = await new Navette.Markers.FenceWaiter(config).WaitAsync(TimeSpan.FromSeconds(seconds), null, CancellationToken.None);
        Assert.True(pending.Count == 0, "not caught up: " + string.Join("; ", pending.Select(p => $"{p.Subscription} on {p.Node}")));
    }

    /// <summary>The 1-based line of the first line of the configuration file containing <paramref name="text"/>.</summary>
    public int LineOf(string text) => Array.FindIndex(File.ReadAllLines(ConfigPath), l => l.Contains(text, StringComparison.Ordinal)) + 1;

    public void Dispose()
    {
        _logs.Dispose();
        try { File.Delete(ConfigPath); } catch (IOException) { }
    }
}
