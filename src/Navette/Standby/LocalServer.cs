using System.Globalization;
using Navette.Processes;

namespace Navette.Standby;

/// <summary>
/// A PostgreSQL server whose data directory is on this machine, driven with pg_ctl (as the postgres OS user when
/// navette runs as root). Its log goes to <c>server.log</c> in the data directory unless it already logs elsewhere.
/// </summary>
internal sealed class LocalServer(string pgdata)
{
    public const string LogFileName = "server.log";
    private const int WaitSeconds = 300;

    public string PgData { get; } = pgdata;

    /// <summary>Fails with the fix when PostgreSQL's server tools (pg_ctl, pg_basebackup, pg_rewind) are not on this machine.</summary>
    public static void RequireTools()
    {
        try
        {
            _ = PgBinaries.Path("pg_ctl");
            _ = PgBinaries.MajorVersion;
        }
        catch (InvalidOperationException e)
        {
            throw new NavetteException(e.Message);
        }
    }

    public string LogFile => Path.Combine(PgData, LogFileName);

    public bool IsDataDirectory => File.Exists(Path.Combine(PgData, "PG_VERSION"));

    public int? PostmasterPid => WalRestorer.PostmasterPid(PgData) is { } pid && PgProcesses.IsPostmasterOf(pid, PgData) ? pid : null;

    public bool IsRunning => PostmasterPid is not null;

    /// <summary>
    /// Runs a client tool of the server's version (pg_basebackup, pg_rewind) as the server's OS user, connecting with
    /// <paramref name="conninfo"/>: its password, if any, goes through PGPASSWORD, never the command line.
    /// </summary>
    public static Task<ProcessResult> RunClientToolAsync(string tool, string conninfoOption, string conninfo, IEnumerable<string> args, CancellationToken ct)
    {
        var (withoutPassword, password) = Config.ConnInfo.WithoutPassword(conninfo);
        return ProcessRunner.RunAsync(PgBinaries.Path(tool), [conninfoOption, withoutPassword, .. args], new ProcessRunOptions
        {
            AsPostgresUser = true,
            ThrowOnError = false,
            Environment = password is null ? null : new Dictionary<string, string> { ["PGPASSWORD"] = password },
        }, ct);
    }

    public async Task StartAsync(CancellationToken ct)
    {
        var result = await ProcessRunner.RunPgToolAsync("pg_ctl",
            ["-D", PgData, "-l", LogTarget(), "-w", "-t", WaitSeconds.ToString(CultureInfo.InvariantCulture), "start"], throwOnError: false, ct);
        if (!result.Succeeded)
            throw new NavetteException($"pg_ctl start -D {PgData} failed: {result.CombinedOutput}{LogTail()}");
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (!IsRunning)
            return;
        var result = await ProcessRunner.RunPgToolAsync("pg_ctl",
            ["-D", PgData, "-m", "fast", "-w", "-t", WaitSeconds.ToString(CultureInfo.InvariantCulture), "stop"], throwOnError: false, ct);
        if (!result.Succeeded && IsRunning)
            throw new NavetteException($"pg_ctl stop -D {PgData} failed: {result.CombinedOutput}");
    }

    /// <summary>pg_ctl restart, logging to where the server logs now (so its stderr does not become ours).</summary>
    public async Task RestartAsync(CancellationToken ct)
    {
        var result = await ProcessRunner.RunPgToolAsync("pg_ctl",
            ["-D", PgData, "-l", LogTarget(), "-m", "fast", "-w", "-t", WaitSeconds.ToString(CultureInfo.InvariantCulture), "restart"], throwOnError: false, ct);
        if (!result.Succeeded)
            throw new NavetteException($"pg_ctl restart -D {PgData} failed: {result.CombinedOutput}{LogTail()}");
    }

    public async Task PromoteAsync(TimeSpan timeout, CancellationToken ct)
    {
        var result = await ProcessRunner.RunPgToolAsync("pg_ctl",
            ["-D", PgData, "-w", "-t", ((int)Math.Ceiling(timeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture), "promote"], throwOnError: false, ct);
        if (!result.Succeeded)
            throw new NavetteException($"pg_ctl promote -D {PgData} failed: {result.CombinedOutput}{LogTail()}");
    }

    /// <summary>pg_controldata's fields (<c>Database cluster state</c>, <c>Latest checkpoint location</c>, ...).</summary>
    public async Task<Dictionary<string, string>> ControlDataAsync(CancellationToken ct)
    {
        var result = await ProcessRunner.RunPgToolAsync("pg_controldata", ["-D", PgData], throwOnError: false, ct);
        if (!result.Succeeded)
            throw new NavetteException($"pg_controldata -D {PgData} failed: {result.CombinedOutput}");
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in result.StdOut.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
                fields[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }

        return fields;
    }

    /// <summary>The last lines of the server log, for error messages.</summary>
    public string LogTail(int maxChars = 2000)
    {
        try
        {
            var path = LogTarget();
            if (!File.Exists(path))
                return string.Empty;
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            fs.Seek(Math.Max(0, fs.Length - maxChars), SeekOrigin.Begin);
            using var reader = new StreamReader(fs);
            return $"\n--- last lines of {path} ---\n{reader.ReadToEnd().Trim()}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    /// <summary>The regular file the running postmaster writes its stderr to, else <see cref="LogFile"/>.</summary>
    private string LogTarget()
    {
        if (PostmasterPid is { } pid)
        {
            try
            {
                var target = new FileInfo($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd/2").LinkTarget;
                if (target is not null && target.StartsWith('/') && File.Exists(target))
                    return target;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return LogFile;
    }
}
