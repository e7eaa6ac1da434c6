using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Navette.Cli.Demo;
using Navette.Config;
using Navette.Consistency;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Faults;

/// <summary>The faults a run injects.</summary>
internal enum FaultKind
{
    DaemonKill,
    TargetImmediateStop,
    OriginImmediateStop,
    OriginNetworkCut,
    TargetNetworkCut,
    OriginNetworkStall,
    TargetNetworkStall,
    TargetTableLock,
    OriginLongTransaction,
    TargetDiskFull,
}

/// <summary>One injected fault: when, how long it lasted, how long replication took to apply what was written after it.</summary>
internal sealed record FaultRecord(FaultKind Kind, TimeSpan At, TimeSpan Held, TimeSpan Recovery, string Note);

/// <summary>
/// A replication origin → target under a write load on every replicated table, with the daemon as a real child
/// process reaching both nodes through a <see cref="FaultProxy"/> each, and the target's <c>blobs</c> on a
/// <see cref="TinyDisk"/>. <see cref="InjectAsync"/> injects one fault, lifts it, and waits until the target has
/// applied everything committed on the origin by then; <see cref="FinishAsync"/> stops the writers and compares every
/// table (navette compare and an independent row audit), requiring nothing lost, duplicated or different.
/// </summary>
internal sealed class FaultRun : IAsyncDisposable
{
    public const string Sub = "origin_to_target";
    /// <summary>apply_timeout of the subscription: the table-lock fault holds its lock well past it.</summary>
    public static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RecoveryTimeout = TimeSpan.FromSeconds(150);
    private const int SeedRows = 20_000;

    private readonly ITestOutputHelper _output;
    private readonly Random _random;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<FaultRecord> _faults = [];
    private readonly List<string> _errorsSeen = [];
    private TinyDisk _disk = null!;
    private ReplicationHarness _h = null!;
    private FaultProxy _originProxy = null!;
    private FaultProxy _targetProxy = null!;
    private WriteLoad _ledger = null!;
    private WriteLoad _blobs = null!;
    private NavetteProcess? _daemon;
    private int _daemonRuns;
    private long _faultTxIds;

    private FaultRun(ITestOutputHelper output, int seed)
    {
        _output = output;
        Seed = seed;
        _random = new Random(seed);
    }

    public int Seed { get; }
    public IReadOnlyList<FaultRecord> Faults => _faults;
    public LocalCluster Origin => _h["origin"];
    public LocalCluster Target => _h["target"];
    public bool DiskFullAvailable => _disk.Unavailable is null;
    public string? DiskFullUnavailable => _disk.Unavailable;

    public static async Task<FaultRun> StartAsync(ITestOutputHelper output, int? seed = null)
    {
        var run = new FaultRun(output, seed ?? Environment.TickCount & 0x7fffffff);
        output.WriteLine($"fault run: random seed {run.Seed}");
        run._disk = await TinyDisk.MountAsync(TestClusters.RootDir);
        if (run._disk.Unavailable is not null) output.WriteLine("fault run: disk-full fault not available: " + run._disk.Unavailable);
        run._h = await ReplicationHarness.StartAsync(output, "origin", "target");
        await run.Origin.ExecuteAsync(LedgerWorkload.OriginSchema + FaultWorkload.OriginBlobs);
        var tablespace = run._disk.Unavailable is null ? "tiny_disk" : null;
        if (tablespace is not null)
            await run.Target.ExecuteAsync($"CREATE TABLESPACE {tablespace} LOCATION '{run._disk.TablespaceDir}'");
        await run.Target.ExecuteAsync(LedgerWorkload.ReplicaSchema + FaultWorkload.TargetBlobs(tablespace));
        await LedgerWorkload.SeedAsync(run.Origin, SeedRows);
        run._originProxy = new FaultProxy(run.Origin.Port);
        run._targetProxy = new FaultProxy(run.Target.Port);
        await File.WriteAllTextAsync(run._h.ConfigPath, $$"""
            nodes:
              origin: { conninfo: "host=127.0.0.1 port={{run._originProxy.Port}} dbname=postgres user=postgres connect_timeout=5" }
              target: { conninfo: "host=127.0.0.1 port={{run._targetProxy.Port}} dbname=postgres user=postgres connect_timeout=5" }
            sets:
              money: { tables: [{{FaultWorkload.Tables}}] }
            subscriptions:
              {{Sub}}: { from: origin, to: target, sets: [money], copy_workers: 2, apply_timeout: {{ApplyTimeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)}}s }
            """);
        run._h.ReloadConfig();
        await run._h.ApplyAsync();
        run._ledger = LedgerWorkload.Start(run.Origin, perSecond: 100, output);
        run._blobs = FaultWorkload.StartBlobs(run.Origin, perSecond: 25, output);
        run.StartDaemon();
        await run.WaitAppliedAsync("the initial copy and first transactions");
        return run;
    }

    private void StartDaemon() => _daemon = NavetteProcess.StartDaemon(_output, _h.ConfigPath, $"daemon#{++_daemonRuns}");

    private async Task RestartDaemonAsync()
    {
        _daemon!.Kill();
        await _daemon.WaitForExitAsync(TimeSpan.FromSeconds(15));
        await _daemon.DisposeAsync();
        StartDaemon();
    }

    public TimeSpan Elapsed => _clock.Elapsed;
    public long Transactions => _ledger.Committed + _blobs.Committed;

    private void Log(string line)
    {
        try { _output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} fault run: {line}"); } catch (InvalidOperationException) { }
    }

    private TimeSpan Between(int minMs, int maxMs) => TimeSpan.FromMilliseconds(_random.Next(minMs, maxMs));

    /// <summary>Injects one fault, lifts it, and waits until everything committed on the origin by then is on the target.</summary>
    public async Task<FaultRecord> InjectAsync(FaultKind kind)
    {
        var at = _clock.Elapsed;
        // Some writes first, so that the fault lands under load at a random moment.
        await Task.Delay(Between(200, 2500));
        var held = Stopwatch.StartNew();
        var note = kind switch
        {
            FaultKind.DaemonKill => await DaemonKillAsync(),
            FaultKind.TargetImmediateStop => await TargetImmediateStopAsync(),
            FaultKind.OriginImmediateStop => await OriginImmediateStopAsync(),
            FaultKind.OriginNetworkCut => await NetworkAsync(_originProxy, stall: false),
            FaultKind.TargetNetworkCut => await NetworkAsync(_targetProxy, stall: false),
            FaultKind.OriginNetworkStall => await NetworkAsync(_originProxy, stall: true),
            FaultKind.TargetNetworkStall => await NetworkAsync(_targetProxy, stall: true),
            FaultKind.TargetTableLock => await TableLockAsync(),
            FaultKind.OriginLongTransaction => await LongTransactionAsync(),
            FaultKind.TargetDiskFull => await DiskFullAsync(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var heldFor = held.Elapsed;
        var recovery = await WaitAppliedAsync($"recovery from {kind}");
        var record = new FaultRecord(kind, at, heldFor, recovery, note);
        _faults.Add(record);
        Log($"{kind} #{_faults.Count(f => f.Kind == kind)}: held {heldFor.TotalSeconds:F1} s, applied again {recovery.TotalSeconds:F1} s after; {note}");
        return record;
    }

    /// <summary>
    /// Waits until the target holds the origin's latest ledger id and blob id as of now (each writer's own tables and
    /// their transactions are whole, so this means everything committed before is applied).
    /// </summary>
    private async Task<TimeSpan> WaitAppliedAsync(string what, bool writersRunning = true)
    {
        var clock = Stopwatch.StartNew();
        if (writersRunning)
        {
            await _ledger.WaitForCommitsAsync(5, TimeSpan.FromSeconds(60));
            await _blobs.WaitForCommitsAsync(2, TimeSpan.FromSeconds(60));
        }
        var ledger = await Origin.ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM ledger");
        var blob = await Origin.ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM blobs");
        await Eventually.TrueAsync(async () =>
                await Target.ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM ledger") >= ledger &&
                await Target.ScalarAsync<long>("SELECT coalesce(max(id), 0) FROM blobs") >= blob,
            RecoveryTimeout, $"{what}: the target to apply ledger id {ledger} and blob id {blob} (daemon: {_daemon?.RecentOutput(15)})", pollMs: 100);
        return clock.Elapsed;
    }

    private async Task<string> DaemonKillAsync()
    {
        await RestartDaemonAsync();
        return "SIGKILL, restarted at once";
    }

    /// <summary>An apply session of the target's in a transaction right now (polled briefly), so the stop lands mid-transaction.</summary>
    private async Task<bool> WaitApplyInTransactionAsync()
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            var busy = await Target.ScalarAsync<long>(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'navette%apply' AND xact_start IS NOT NULL");
            if (busy > 0) return true;
            await Task.Delay(2);
        }
        return false;
    }

    private async Task<string> TargetImmediateStopAsync()
    {
        var mid = await WaitApplyInTransactionAsync();
        await Target.StopAsync(ShutdownMode.Immediate);
        var down = Between(1000, 4000);
        await Task.Delay(down);
        await Target.StartAsync();
        return $"pg_ctl -m immediate {(mid ? "with an apply transaction open" : "(no apply transaction seen open)")}, down {down.TotalSeconds:F1} s";
    }

    private async Task<string> OriginImmediateStopAsync()
    {
        // A transaction with rows written and not committed when the origin stops: it must appear nowhere.
        var id = Interlocked.Decrement(ref _faultTxIds);
        var inflight = new NpgsqlConnection(Origin.ConnectionString);
        await inflight.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"BEGIN; INSERT INTO blobs (id, version, payload) VALUES ({id}, 0, 'never committed')", inflight))
            await cmd.ExecuteNonQueryAsync();
        await Origin.StopAsync(ShutdownMode.Immediate);
        await inflight.DisposeAsync();
        var down = Between(1000, 4000);
        await Task.Delay(down);
        await Origin.StartAsync();
        await _ledger.WaitForCommitsAsync(5, TimeSpan.FromSeconds(60));
        var o = await Origin.ScalarAsync<long>($"SELECT count(*) FROM blobs WHERE id = {id}");
        var t = await Target.ScalarAsync<long>($"SELECT count(*) FROM blobs WHERE id = {id}");
        Assert.True(o == 0 && t == 0, $"the transaction open when the origin stopped is on the origin ({o}) or the target ({t})");
        return $"pg_ctl -m immediate with a transaction open (blob {id}, gone on both sides afterwards), down {down.TotalSeconds:F1} s";
    }

    private async Task<string> NetworkAsync(FaultProxy proxy, bool stall)
    {
        var name = proxy == _originProxy ? "origin" : "target";
        var length = stall ? Between(3000, 9000) : Between(2000, 7000);
        if (stall) proxy.Stall(); else proxy.Cut();
        await Task.Delay(length);
        proxy.Resume();
        return $"{(stall ? "stalled (connections open, no byte moving)" : "cut (connections reset, new ones refused)")} to the {name} for {length.TotalSeconds:F1} s";
    }

    /// <summary>A client locks a replicated table on the target (ACCESS EXCLUSIVE) well past apply_timeout.</summary>
    private async Task<string> TableLockAsync()
    {
        await using var locker = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(Target.ConnectionString) { ApplicationName = "fault_locker" }.ConnectionString);
        await locker.OpenAsync();
        var pid = locker.ProcessID;
        await using (var cmd = new NpgsqlCommand("BEGIN; LOCK TABLE public.accounts IN ACCESS EXCLUSIVE MODE", locker))
            await cmd.ExecuteNonQueryAsync();
        var error = await Eventually.ValueAsync(() => NodeQueries.ErrorAsync(Target, Sub),
            e => e is not null && e.Contains("apply_timeout", StringComparison.Ordinal) && e.Contains($"pid {pid}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60), $"the subscription's error to name apply_timeout and the locking session (pid {pid})");
        Record(error!);
        await Task.Delay(Between(500, 3000));
        await using (var cmd = new NpgsqlCommand("ROLLBACK", locker))
            await cmd.ExecuteNonQueryAsync();
        return $"ACCESS EXCLUSIVE on public.accounts by pid {pid}; error: {Shorten(error!)}";
    }

    /// <summary>An origin transaction open for a long while, writing now and then, with a daemon kill in the middle of it.</summary>
    private async Task<string> LongTransactionAsync()
    {
        var length = Between(8000, 20000);
        // Ids below -1 000 000, a million per long transaction (the in-flight ones count down from -1).
        var first = -1_000_000L * (1 + _faults.Count(f => f.Kind == FaultKind.OriginLongTransaction)) - 999_999;
        await using var conn = new NpgsqlConnection(Origin.ConnectionString);
        await conn.OpenAsync();
        await using (var begin = new NpgsqlCommand("BEGIN", conn)) await begin.ExecuteNonQueryAsync();
        var clock = Stopwatch.StartNew();
        var written = 0;
        var killed = false;
        while (clock.Elapsed < length)
        {
            await using (var cmd = new NpgsqlCommand($"INSERT INTO blobs (id, version, payload) SELECT {first} + g, 0, 'long ' || g FROM generate_series({written}, {written + 49}) g", conn))
                await cmd.ExecuteNonQueryAsync();
            written += 50;
            if (written > 999_000) break;
            if (!killed && clock.Elapsed > length / 2)
            {
                // The restarted daemon must decode this transaction again from its start, which is older than everything it confirmed.
                await RestartDaemonAsync();
                killed = true;
            }
            await Task.Delay(500);
        }
        await using (var commit = new NpgsqlCommand("COMMIT", conn)) await commit.ExecuteNonQueryAsync();
        await Eventually.TrueAsync(async () => await Target.ScalarAsync<long>($"SELECT count(*) FROM blobs WHERE id BETWEEN {first} AND {first + written - 1}") == written,
            RecoveryTimeout, $"the long transaction's {written} rows on the target");
        return $"open {length.TotalSeconds:F1} s with {written} rows, daemon killed in the middle; all {written} rows applied after its commit";
    }

    /// <summary>The target's tablespace for blobs fills up; freed once the subscription reports it.</summary>
    private async Task<string> DiskFullAsync()
    {
        if (_disk.Unavailable is not null) return "not injected: " + _disk.Unavailable;
        await _disk.FillAsync();
        // After a while the blobs table reuses the room its deletes and updates left, and the writer alone would not
        // need a new page: one transaction of 4 MB more than any free space makes sure the target must grow the file.
        var burst = -10_000_000_000L - 100_000L * _faults.Count(f => f.Kind == FaultKind.TargetDiskFull);
        await Origin.ExecuteAsync($"INSERT INTO blobs (id, version, payload) SELECT {burst} - g, 0, string_agg(md5(g::text || ':' || i::text), '') " +
                                  "FROM generate_series(1, 2000) g, generate_series(1, 64) i GROUP BY g");
        string? error;
        try
        {
            error = await Eventually.ValueAsync(() => NodeQueries.ErrorAsync(Target, Sub),
                e => e is not null && e.Contains("No space left on device", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), "the subscription's error to report the full disk");
        }
        catch (TimeoutException)
        {
            Log("target server log:\n" + Target.ReadLogTail(6000));
            throw;
        }
        Record(error!);
        // Still full a little longer: the worker keeps retrying without losing its place.
        await Task.Delay(Between(1000, 4000));
        await _disk.FreeAsync();
        return $"tablespace on a full tmpfs; error: {Shorten(error!)}";
    }

    private void Record(string error)
    {
        lock (_errorsSeen) _errorsSeen.Add(error);
    }

    private static string Shorten(string s) => s.Length <= 400 ? s : s[..397] + "...";

    /// <summary>Stops the writers, waits until the target caught up, compares every table, prints the summary and asserts a clean verdict.</summary>
    public async Task FinishAsync()
    {
        var ledger = await _ledger.StopAsync();
        var blobs = await _blobs.StopAsync();
        await WaitAppliedAsync("the end of the run", writersRunning: false);
        await _h.WaitCaughtUpAsync(180);

        var options = new Navette.Consistency.CompareOptions { DetailRows = 200, BucketsPerRange = 20, DetailMaxRows = 5000 };
        var compared = await new CompareRunner(_h.Config, options, _h.Logs.CreateLogger("compare")).RunAsync(new CompareSelection(), null, CancellationToken.None);
        var audits = new List<TableAudit>();
        foreach (var table in FaultWorkload.TableNames)
            audits.Add(await RowAudit.AuditAsync(Origin, Target, table));

        var lost = audits.Sum(a => a.Lost);
        var duplicated = audits.Sum(a => a.Duplicated);
        var different = audits.Sum(a => a.Different) + audits.Sum(a => a.Extra);
        var compareDiffs = compared.Sum(c => c.Differences.Count);
        var clean = lost == 0 && duplicated == 0 && different == 0 && audits.All(a => a.Clean) && compared.All(c => c.Identical);

        var lines = new List<string>
        {
            $"=== fault run summary (seed {Seed}, {_clock.Elapsed.TotalMinutes:F1} min) ===",
            $"faults injected: {_faults.Count} ({string.Join(", ", _faults.GroupBy(f => f.Kind).Select(g => $"{g.Key} x{g.Count()}"))})",
            $"daemon runs: {_daemonRuns}",
            $"transactions committed on the origin: {ledger + blobs} (ledger writer {ledger}, blobs writer {blobs}; failed attempts during outages {_ledger.Failed + _blobs.Failed})",
        };
        foreach (var g in _faults.GroupBy(f => f.Kind))
            lines.Add($"  {g.Key}: {g.Count()} injected, held {g.Average(f => f.Held.TotalSeconds):F1} s on average, " +
                      $"applied again after {g.Average(f => f.Recovery.TotalSeconds):F1} s on average (max {g.Max(f => f.Recovery.TotalSeconds):F1} s)");
        foreach (var a in audits) lines.Add("  audit " + a);
        foreach (var c in compared)
            lines.Add($"  navette compare {c.Subject.Name}: {(c.Identical ? "identical" : $"{c.Count(DifferenceKind.Missing)} missing, {c.Count(DifferenceKind.Extra)} extra, {c.Count(DifferenceKind.Different)} different, {c.UnsettledRanges} unsettled, error {c.Error}")}");
        lock (_errorsSeen)
            foreach (var e in _errorsSeen.Distinct().Take(6)) lines.Add("  error reported: " + Shorten(e));
        lines.Add($"rows lost: {lost}, duplicated: {duplicated}, different: {different}; navette compare differences: {compareDiffs}");
        lines.Add($"verdict: {(clean ? "PASS" : "FAIL")}");
        foreach (var l in lines) _output.WriteLine(l);
        Summary = string.Join('\n', lines);
        var summaryFile = Environment.GetEnvironmentVariable("NAVETTE_FAULTS_SUMMARY");
        if (!string.IsNullOrEmpty(summaryFile)) await File.AppendAllTextAsync(summaryFile, Summary + "\n");

        Assert.True(clean, Summary);
        await LedgerWorkload.AssertIntactAsync(Origin, Target, SeedRows + ledger);
        var row = await NodeQueries.SubscriptionAsync(Target, Sub);
        Assert.Equal("streaming", row!.State);
    }

    public string Summary { get; private set; } = "";

    public async ValueTask DisposeAsync()
    {
        if (_daemon is not null) await _daemon.DisposeAsync();
        if (_ledger is not null) await _ledger.DisposeAsync();
        if (_blobs is not null) await _blobs.DisposeAsync();
        if (_originProxy is not null) await _originProxy.DisposeAsync();
        if (_targetProxy is not null) await _targetProxy.DisposeAsync();
        if (_h is not null) await _h.DisposeAsync();
        if (_disk is not null) await _disk.DisposeAsync();
    }
}
