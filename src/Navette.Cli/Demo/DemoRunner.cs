using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Daemon;
using Navette.Markers;
using Navette.Processes;
using Navette.Setup;
using Navette.Status;
using Npgsql;

namespace Navette.Cli.Demo;

/// <summary>
/// <c>navette demo</c>: four throwaway clusters (paris is the origin; lyon and nice replicate it; lille
/// replicates lyon, so it is a cascade), a live shop workload, then a row-by-row verdict.
/// </summary>
internal sealed class DemoRunner(int seconds, bool keep, string? dir, bool verbose, TextWriter @out)
{
    private static readonly string[] NodeNames = ["paris", "lyon", "nice", "lille"];
    private const int Writers = 2;

    public async Task<int> RunAsync(CancellationToken ct)
    {
        if (!PgBinaries.IsAvailable)
            throw new NavetteException(PgBinaries.NotFoundMessage);
        var total = Stopwatch.StartNew();
        var root = dir ?? Path.Combine(Path.GetTempPath(), "navette-demo-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(root);
        LocalClusterFs.EnsureReachableByPostgres(root);
        var logPath = Path.Combine(root, "navette.log");
        @out.WriteLine($"navette demo: PostgreSQL {PgBinaries.MajorVersion} from {PgBinaries.BinDir}; everything lives in {root}");

        var clusters = new Dictionary<string, LocalCluster>();
        var success = false;
        try
        {
            Step("starting 4 local clusters");
            var started = await Task.WhenAll(NodeNames.Select(n => LocalCluster.CreateAsync(n, root, new LocalClusterOptions { Database = "shop" }, ct)));
            for (var i = 0; i < NodeNames.Length; i++) clusters[NodeNames[i]] = started[i];
            foreach (var (n, c) in clusters) @out.WriteLine($"    {n,-6} {c.ConnInfo}");

            Step("creating the shop schema on every node and 72,000 rows on paris");
            foreach (var c in clusters.Values) await c.ExecuteAsync(DemoSchema.Tables, ct);
            await clusters["paris"].ExecuteAsync(DemoSchema.Seed, ct);

            var configPath = Path.Combine(root, "navette.yaml");
            await File.WriteAllTextAsync(configPath, Yaml(clusters), ct);
            var config = ConfigLoader.Load(configPath);
            Step($"configuration written to {configPath}");
            foreach (var line in (await File.ReadAllLinesAsync(configPath, ct)).SkipWhile(l => !l.StartsWith("sets:", StringComparison.Ordinal)))
                @out.WriteLine("    " + line);

            using var logs = FileLogs(logPath);
            Step("navette apply");
            foreach (var a in await new Reconciler(config, logs.CreateLogger("navette.apply")).RunAsync(ct))
                @out.WriteLine("    " + a);

            Step($"navette run (daemon in this process; its log: {logPath})");
            using var daemonStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var daemon = Task.Run(() => new ReplicationDaemon(config, logs).RunAsync(new DaemonOptions(), daemonStop.Token), CancellationToken.None);
            await WaitForStreamingAsync(config, daemon, ct);

            Step($"write workload on paris: {Writers} sessions for {seconds} s (orders, balances, status changes, deletes)");
            var committed = await RunWorkloadAsync(config, clusters["paris"], daemon, ct);

            Step("navette wait: until every node applied everything paris committed");
            var clock = Stopwatch.StartNew();
            var pending = await new FenceWaiter(config).WaitAsync(TimeSpan.FromSeconds(60), null, ct);
            if (pending.Count > 0)
                throw new NavetteException("replicas did not catch up within 60 s: " + string.Join(", ", pending.Select(p => p.Subscription)) + $"; see {logPath}");
            @out.WriteLine($"    caught up {clock.Elapsed.TotalSeconds:F1} s after the workload stopped");

            Step("consistency check: every table, every row, every node against paris");
            success = await VerifyAsync(clusters, ct);

            await daemonStop.CancelAsync();
            await daemon;
            @out.WriteLine();
            @out.WriteLine(success
                ? $"VERDICT: all 4 nodes identical ({committed:N0} transactions replicated live, demo took {total.Elapsed.TotalSeconds:F0} s)"
                : "VERDICT: nodes differ (see above)");
            Explore(configPath, clusters);
            return success ? NavetteCommand.ExitOk : NavetteCommand.ExitFailure;
        }
        finally
        {
            if (!keep)
            {
                foreach (var c in clusters.Values) await c.DisposeAsync();
                if (dir is null && success) LocalClusterFs.DeleteDirectoryQuietly(root);
                else if (!success) @out.WriteLine($"The daemon's log is kept in {logPath}");
            }
        }
    }

    private void Step(string text) => @out.WriteLine($"==> {text}");

    private static string Yaml(Dictionary<string, LocalCluster> clusters) =>
        "# Written by navette demo.\nnodes:\n"
        + string.Concat(clusters.Select(kv => $"  {kv.Key}:\n    conninfo: \"{kv.Value.ConnInfo}\"\n"))
        + """
          sets:
            shop:
              tables: [public.*]
          subscriptions:
            paris_to_lyon: { from: paris, to: lyon, sets: [shop] }
            paris_to_nice: { from: paris, to: nice, sets: [shop] }
            lyon_to_lille: { from: lyon, to: lille, sets: [shop], forward: true }

          """;

    private ILoggerFactory FileLogs(string path)
    {
        var writer = new StreamWriter(path, append: true) { AutoFlush = true };
        return LoggerFactory.Create(b => b
            .SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information)
            .AddFilter("Npgsql", LogLevel.Warning)
            .AddProvider(new FileLoggerProvider(writer)));
    }

    private async Task WaitForStreamingAsync(NavetteConfig config, Task daemon, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (daemon.IsCompleted) await daemon;
            var status = await new StatusReader(config).ReadAsync(ct);
            if (status.All(s => s.State == "streaming"))
            {
                @out.WriteLine($"    initial copy done, all subscriptions streaming ({clock.Elapsed.TotalSeconds:F1} s)");
                return;
            }
            if (status.FirstOrDefault(s => s.State == "failed") is { } failed)
                throw new NavetteException($"subscription {failed.Name} failed: {failed.Error}");
            if (clock.Elapsed > TimeSpan.FromSeconds(90))
                throw new NavetteException("subscriptions did not start streaming within 90 s: " + string.Join(", ", status.Select(s => $"{s.Name}={s.State}")));
            await Task.Delay(250, ct);
        }
    }

    private async Task<long> RunWorkloadAsync(NavetteConfig config, LocalCluster origin, Task daemon, CancellationToken ct)
    {
        long committed = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(TimeSpan.FromSeconds(seconds));
        var writers = Enumerable.Range(0, Writers).Select(_ => Task.Run(async () =>
        {
            await using var conn = new NpgsqlConnection(origin.ConnectionString);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand(DemoSchema.Transaction, conn);
            while (!stop.IsCancellationRequested)
            {
                await using var tx = await conn.BeginTransactionAsync(ct);
                cmd.Transaction = tx;
                await cmd.ExecuteNonQueryAsync(ct);
                await tx.CommitAsync(ct);
                Interlocked.Increment(ref committed);
            }
        }, ct)).ToList();

        var reader = new StatusReader(config);
        var clock = Stopwatch.StartNew();
        long last = 0;
        while (!writers.All(w => w.IsCompleted))
        {
            await Task.WhenAny(Task.WhenAll(writers), Task.Delay(2000, ct));
            if (daemon.IsFaulted) await daemon;
            var now = Interlocked.Read(ref committed);
            var status = await reader.ReadAsync(ct);
            var lags = string.Join("  ", status.Select(s =>
                $"{s.To}: lag {(s.LagBytes is { } b ? StatusTable.Bytes(b) : "?")}/{(s.LagSeconds is { } l ? l.ToString("F1", CultureInfo.InvariantCulture) : "?")} s"));
            @out.WriteLine($"    {clock.Elapsed.TotalSeconds,4:F0} s  {now - last,5} tx ({(now - last) / 2.0,6:F0} tx/s)   {lags}");
            last = now;
        }
        await Task.WhenAll(writers);
        @out.WriteLine($"    {committed:N0} transactions committed on paris");
        return committed;
    }

    private async Task<bool> VerifyAsync(Dictionary<string, LocalCluster> clusters, CancellationToken ct)
    {
        var ok = true;
        @out.WriteLine($"    {"table",-22} {"paris rows",11}  {"lyon",-10} {"nice",-10} {"lille",-10}");
        foreach (var table in DemoSchema.TableNames)
        {
            var digests = new Dictionary<string, DemoVerifier.TableDigest>();
            foreach (var (n, c) in clusters) digests[n] = await DemoVerifier.DigestAsync(c.ConnectionString, table, ct);
            var reference = digests["paris"];
            var cells = NodeNames.Skip(1).Select(n => digests[n] == reference ? "identical" : $"DIFFERS ({digests[n].Rows} rows)").ToList();
            ok &= cells.All(c => c == "identical");
            @out.WriteLine($"    {table,-22} {reference.Rows,11:N0}  {cells[0],-10} {cells[1],-10} {cells[2],-10}");
        }
        return ok;
    }

    private void Explore(string configPath, Dictionary<string, LocalCluster> clusters)
    {
        var navette = File.Exists(Path.Combine("artifacts", "navette", "navette.dll")) ? "dotnet artifacts/navette/navette.dll" : "dotnet run --project src/Navette.Cli --";
        if (keep)
        {
            @out.WriteLine();
            @out.WriteLine("The clusters are still running (--keep). To explore:");
            @out.WriteLine($"  {navette} run -c {configPath}        # replicate again (Ctrl+C stops it)");
            @out.WriteLine($"  {navette} status -c {configPath}     # state and lag of each subscription");
            @out.WriteLine($"  {navette} wait -c {configPath}");
            foreach (var (n, c) in clusters)
                @out.WriteLine($"  psql \"{c.ConnInfo}\"   # {n}");
            @out.WriteLine($"  Stop them with: for d in {string.Join(" ", clusters.Values.Select(c => c.DataDir))}; do runuser -u postgres -- {PgBinaries.Path("pg_ctl")} -D $d stop; done");
        }
        else
        {
            @out.WriteLine("The clusters were removed. Run `navette demo --keep` to keep them and explore with navette status / psql.");
        }
    }
}

/// <summary>Writes log lines to the demo's log file, so the terminal shows only the demo's own progress.</summary>
internal sealed class FileLoggerProvider(StreamWriter writer) : ILoggerProvider
{
    private readonly Lock _lock = new();

    private void Write(string line)
    {
        lock (_lock) writer.WriteLine(line);
    }

    public ILogger CreateLogger(string categoryName) => new FileLogger(this, categoryName);

    public void Dispose() => writer.Dispose();

    private sealed class FileLogger(FileLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            owner.Write($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel,-11} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }
    }
}
