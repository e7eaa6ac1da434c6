using System.Text;
using Microsoft.Extensions.Logging;
using Navette.Cli.Demo;
using Navette.Config;
using Navette.Daemon;
using Navette.Markers;
using Navette.Setup;
using Xunit.Abstractions;

namespace Navette.Tests.Infrastructure;

/// <summary>
/// Nodes, a configuration file written for them, and the daemon running in-process: the pieces every
/// replication test needs. Logs go to the test output.
/// </summary>
internal sealed class ReplicationHarness : IAsyncDisposable
{
    private readonly ITestOutputHelper _output;
    private readonly ILoggerFactory _logs;
    private CancellationTokenSource? _daemonStop;
    private Task? _daemon;

    public Dictionary<string, LocalCluster> Nodes { get; } = new();
    public string ConfigPath { get; }
    public NavetteConfig Config { get; private set; } = null!;

    private ReplicationHarness(ITestOutputHelper output)
    {
        _output = output;
        _logs = LoggerFactory.Create(b => b.SetMinimumLevel(Level).AddFilter("Npgsql", LogLevel.Warning).AddProvider(new TestOutputLoggerProvider(output, Messages)));
        ConfigPath = Path.Combine(TestClusters.RootDir, $"navette-{Guid.NewGuid():N}.yaml");
    }

    public ILoggerFactory Logs => _logs;

    /// <summary>Every message the daemon and commands logged, for tests that check what was reported.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Messages { get; } = new();

    /// <summary>NAVETTE_TEST_DEBUG=1 shows the daemon's debug logs in test output.</summary>
    internal static LogLevel Level => Environment.GetEnvironmentVariable("NAVETTE_TEST_DEBUG") == "1" ? LogLevel.Trace : LogLevel.Information;

    public static async Task<ReplicationHarness> StartAsync(ITestOutputHelper output, params string[] nodeNames)
    {
        var h = new ReplicationHarness(output);
        var clusters = await Task.WhenAll(nodeNames.Select(n => TestClusters.StartAsync(n)));
        for (var i = 0; i < nodeNames.Length; i++) h.Nodes[nodeNames[i]] = clusters[i];
        return h;
    }

    public LocalCluster this[string node] => Nodes[node];

    /// <summary>Runs the same SQL on every node (schema set-up).</summary>
    public async Task OnAllAsync(string sql)
    {
        foreach (var n in Nodes.Values) await n.ExecuteAsync(sql);
    }

    /// <summary>Writes the configuration: the nodes section is generated, <paramref name="rest"/> holds sets and subscriptions.</summary>
    public NavetteConfig WriteConfig(string rest)
    {
        var sb = new StringBuilder("nodes:\n");
        foreach (var (name, c) in Nodes) sb.Append($"  {name}:\n    conninfo: \"{c.ConnInfo}\"\n");
        sb.Append(rest);
        File.WriteAllText(ConfigPath, sb.ToString());
        Config = ConfigLoader.Load(ConfigPath);
        return Config;
    }

    public async Task<IReadOnlyList<string>> ApplyAsync()
    {
        var actions = await new Reconciler(Config, _logs.CreateLogger("apply")).RunAsync(CancellationToken.None);
        foreach (var a in actions) _output.WriteLine("apply: " + a);
        return actions;
    }

    /// <summary>
    /// Starts the daemon in-process; with <paramref name="followConfig"/> it re-reads the file when it changes, as navette run does.
    /// <paramref name="retryBackoff"/> shortens the workers' retry waits (first, longest).
    /// </summary>
    public void StartDaemon(bool followConfig = false, IReadOnlyCollection<string>? only = null, (TimeSpan Min, TimeSpan Max)? retryBackoff = null)
    {
        _daemonStop = new CancellationTokenSource();
        var daemon = new ReplicationDaemon(Config, _logs);
        _daemon = Task.Run(() => daemon.RunAsync(new DaemonOptions(only, FollowConfig: followConfig) { RetryBackoff = retryBackoff }, _daemonStop.Token));
    }

    /// <summary>Reads the configuration file again (after a command rewrote it).</summary>
    public NavetteConfig ReloadConfig() => Config = ConfigLoader.Load(ConfigPath);

    public async Task StopDaemonAsync()
    {
        if (_daemon is null) return;
        await _daemonStop!.CancelAsync();
        await _daemon.WaitAsync(TimeSpan.FromSeconds(60));
        _daemon = null;
    }

    public async Task WaitCaughtUpAsync(double seconds = 90)
    {
        var pending = await new FenceWaiter(Config).WaitAsync(TimeSpan.FromSeconds(seconds), null, CancellationToken.None);
        if (pending.Count > 0)
            throw new TimeoutException("not caught up: " + string.Join("; ", pending.Select(p => $"{p.Subscription} on {p.Node}")));
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopDaemonAsync(); } catch { /* the test already failed or passed; clusters go anyway */ }
        foreach (var n in Nodes.Values) await n.DisposeAsync();
        _logs.Dispose();
        try { File.Delete(ConfigPath); } catch (IOException) { }
    }
}

internal sealed class TestOutputLoggerProvider(ITestOutputHelper output, System.Collections.Concurrent.ConcurrentQueue<string>? messages = null) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new TestOutputLogger(output, categoryName, messages);
    public void Dispose() { }

    private sealed class TestOutputLogger(ITestOutputHelper output, string category, System.Collections.Concurrent.ConcurrentQueue<string>? messages) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= ReplicationHarness.Level;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = formatter(state, exception);
            messages?.Enqueue(text);
            try { output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} {logLevel} {category}: {text}{(exception is null ? "" : " " + exception)}"); }
            catch (InvalidOperationException) { /* test already finished */ }
        }
    }
}
