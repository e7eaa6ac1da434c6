using System.Diagnostics;
using System.Globalization;
using System.Text;
using Navette.Processes;
using Npgsql;

namespace Navette.Cli.Demo;

/// <summary>
/// A throwaway PostgreSQL cluster on loopback, made by copying a cached initdb template:
/// used by <c>navette demo</c>, the benchmarks and the integration tests.
/// Logical replication is enabled (wal_level=logical) and authentication is trust.
/// When running as root, every server tool runs as the <c>postgres</c> OS user.
/// </summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    private const string ConfFileName = "navette.conf";
    private const string LogFileName = "server.log";
    private const int MaxPortAttempts = 5;
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(60);

    private readonly LocalClusterOptions _options;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly object _dataSourceLock = new();
    private NpgsqlDataSource? _dataSource;
    private bool _disposed;

    private LocalCluster(string name, string dataDir, string socketDir, LocalClusterOptions options)
    {
        Name = name;
        DataDir = dataDir;
        SocketDir = socketDir;
        _options = options;
        Database = options.Database;
    }

    /// <summary>The cluster's name (the data dir's last path part).</summary>
    public string Name { get; }

    /// <summary>Full path of the data directory.</summary>
    public string DataDir { get; }

    /// <summary>Directory that holds the server's unix socket (short, under /tmp).</summary>
    public string SocketDir { get; }

    /// <summary>Loopback TCP port the server listens on.</summary>
    public int Port { get; private set; }

    /// <summary>The database that <see cref="ConnInfo"/>, <see cref="ConnectionString"/> and <see cref="DataSource"/> use.</summary>
    public string Database { get; }

    /// <summary>The server log written by pg_ctl -l.</summary>
    public string LogFile => Path.Combine(DataDir, LogFileName);

    /// <summary>libpq connection string, e.g. <c>host=127.0.0.1 port=5433 dbname=postgres user=postgres</c>.</summary>
    public string ConnInfo => $"host=127.0.0.1 port={Port.ToString(CultureInfo.InvariantCulture)} dbname={LibpqQuote(Database)} user=postgres";

    /// <summary>Npgsql connection string for <see cref="Database"/>, unpooled: ports are reused by later clusters, and a pooled connection to an earlier one would be stale.</summary>
    public string ConnectionString => BuildConnectionString(Database, pooling: false);

    /// <summary>A pooled data source for <see cref="ConnectionString"/>, created on first use.</summary>
    public NpgsqlDataSource DataSource
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            lock (_dataSourceLock)
                return _dataSource ??= NpgsqlDataSource.Create(ConnectionString);
        }
    }

    /// <summary>The libpq connection string for another database of this cluster.</summary>
    public string ConnInfoFor(string database) =>
        $"host=127.0.0.1 port={Port.ToString(CultureInfo.InvariantCulture)} dbname={LibpqQuote(database)} user=postgres";

    /// <summary>The Npgsql connection string for another database of this cluster.</summary>
    public string ConnectionStringFor(string database) => BuildConnectionString(database, pooling: false);

    /// <summary>True once <see cref="DisposeAsync"/> has been called.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>True when the postmaster named in postmaster.pid is alive.</summary>
    public bool IsRunning => ReadPostmasterPid() is { } pid && PgProcesses.IsPostmasterOf(pid, DataDir);

    /// <summary>
    /// Creates the cluster at <paramref name="rootDir"/>/<paramref name="name"/>, starts it and creates
    /// <see cref="LocalClusterOptions.Database"/>. The first call per process (and bin dir) may run initdb
    /// to build the cached template; later calls only copy it.
    /// </summary>
    public static async Task<LocalCluster> CreateAsync(string name, string rootDir, LocalClusterOptions? options = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(rootDir);
        if (name.IndexOfAny(['/', '\\']) >= 0 || name is "." or "..")
            throw new ArgumentException($"Cluster name '{name}' must be a single path segment.", nameof(name));
        options ??= new LocalClusterOptions();
        ValidateSettings(options.Settings);
        if (string.IsNullOrEmpty(options.Database))
            throw new ArgumentException("Database must not be empty.", nameof(options));

        var root = Path.GetFullPath(rootDir);
        LocalClusterFs.EnsureReachableByPostgres(root);
        var dataDir = Path.Combine(root, name);
        if (Directory.Exists(dataDir) || File.Exists(dataDir))
            throw new IOException($"Cannot create cluster '{name}': '{dataDir}' already exists.");

        var template = await PgTemplate.GetAsync(ct).ConfigureAwait(false);
        var socketDir = CreateSocketDir();
        var cluster = new LocalCluster(name, dataDir, socketDir, options);
        try
        {
            // cp -a keeps modes (data dir 0700) and, as root, the postgres ownership of the template.
            await ProcessRunner.RunAsync("cp", ["-a", "--", template, dataDir], ct).ConfigureAwait(false);
            File.Delete(Path.Combine(dataDir, "navette-template.ready"));
            await File.AppendAllTextAsync(
                Path.Combine(dataDir, "postgresql.conf"),
                $"{Environment.NewLine}# Added by navette: per-cluster settings (ALTER SYSTEM still overrides them).{Environment.NewLine}include '{ConfFileName}'{Environment.NewLine}",
                ct).ConfigureAwait(false);

            for (var attempt = 1; ; attempt++)
            {
                cluster.Port = PgProcesses.FindFreePort();
                await File.WriteAllTextAsync(Path.Combine(dataDir, ConfFileName), cluster.RenderConf(), ct).ConfigureAwait(false);
                if (attempt == 1)
                {
                    if (PosixUser.IsRoot)
                        await ProcessRunner.RunAsync("chown", ["-R", PosixUser.PostgresUser + ":", dataDir, socketDir], ct).ConfigureAwait(false);
                }
                else
                {
                    await LocalClusterFs.GiveToPostgresAsync(Path.Combine(dataDir, ConfFileName), ct).ConfigureAwait(false);
                }

                try
                {
                    await cluster.StartAsync(ct).ConfigureAwait(false);
                    break;
                }
                catch (ClusterStartException e) when (e.PortInUse && attempt < MaxPortAttempts)
                {
                    // Someone grabbed the port between our probe and the server's bind: try another.
                }
            }

            if (!string.Equals(options.Database, "postgres", StringComparison.Ordinal))
                await cluster.CreateDatabaseAsync(options.Database, ct).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Takes charge of a cluster made by someone else (e.g. a standby made by pg_basebackup) that listens on
    /// <paramref name="port"/>: queries, stop, start, and on dispose the same stop and delete as a created cluster.
    /// </summary>
    public static LocalCluster Attach(string dataDir, int port, LocalClusterOptions? options = null)
    {
        var full = Path.GetFullPath(dataDir);
        return new LocalCluster(Path.GetFileName(full), full, CreateSocketDir(), options ?? new LocalClusterOptions()) { Port = port };
    }

    /// <summary>Starts the server (no-op when it already runs) and waits until it accepts connections.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _lifecycle.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StartCoreAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops the server with pg_ctl -m <paramref name="mode"/>; no-op when it is not running.</summary>
    public async Task StopAsync(ShutdownMode mode = ShutdownMode.Fast, CancellationToken ct = default)
    {
        await _lifecycle.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StopCoreAsync(mode, ct).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Fast stop, then start.</summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _lifecycle.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await StopCoreAsync(ShutdownMode.Fast, ct).ConfigureAwait(false);
            await StartCoreAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Simulates a server crash: SIGKILL to the postmaster, then waits until its children have gone
    /// and the port is free, and removes the stale lock files so <see cref="StartAsync"/> works.
    /// </summary>
    public async Task KillPostmasterAsync(CancellationToken ct = default)
    {
        await _lifecycle.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var pid = ReadPostmasterPid();
            if (pid is { } p && PgProcesses.IsPostmasterOf(p, DataDir))
            {
                var children = PgProcesses.ChildrenOf(p);
                PgProcesses.Kill(p);
                if (!await PgProcesses.WaitForExitAsync([p], TimeSpan.FromSeconds(30), ct).ConfigureAwait(false))
                    throw new TimeoutException($"Postmaster {p} of cluster '{Name}' did not die after SIGKILL.");

                // Backends notice the postmaster's death and quit by themselves; a new postmaster must
                // not start while they still hold the old shared memory, so wait (and force if needed).
                if (!await PgProcesses.WaitForExitAsync(children, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false))
                {
                    foreach (var c in children)
                        PgProcesses.Kill(c);
                    await PgProcesses.WaitForExitAsync(children, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
                }
            }
            if (Port > 0 && !await PgProcesses.WaitForPortFreeAsync(Port, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false))
                throw new TimeoutException($"Port {Port} of cluster '{Name}' is still accepting connections after killing the postmaster.");
            RemoveStaleLockFiles();
            ClearPools();
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Runs a statement through <see cref="DataSource"/> and returns the affected row count.</summary>
    public async Task<int> ExecuteAsync(string sql, CancellationToken ct = default)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Runs a query through <see cref="DataSource"/> and returns its first column of the first row (null/DBNull → default).</summary>
    public async Task<T?> ScalarAsync<T>(string sql, CancellationToken ct = default)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        var value = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        if (value is null || value is DBNull)
            return default;
        if (value is T t)
            return t;
        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }

    /// <summary>The last <paramref name="maxChars"/> characters of the server log (empty if none).</summary>
    public string ReadLogTail(int maxChars = 4000) => ReadTail(LogFile, 0, maxChars);

    /// <summary>Stops the server (immediate, or fast when Keep is set) and deletes its directories unless Keep is set. Never throws.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;

        var mode = _options.Keep ? ShutdownMode.Fast : ShutdownMode.Immediate;
        try
        {
            await StopAsync(mode).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // pg_ctl could not stop it (or is missing): make sure no server is left behind.
            try
            {
                if (ReadPostmasterPid() is { } pid && PgProcesses.IsPostmasterOf(pid, DataDir))
                {
                    PgProcesses.Kill(pid);
                    await PgProcesses.WaitForExitAsync([pid], TimeSpan.FromSeconds(10)).ConfigureAwait(false);
                }
            }
            catch (Exception)
            {
                // best effort
            }
        }

        NpgsqlDataSource? ds;
        lock (_dataSourceLock)
        {
            ds = _dataSource;
            _dataSource = null;
        }
        if (ds is not null)
        {
            try
            {
                await ds.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // best effort
            }
        }
        ClearPools();

        if (!_options.Keep)
        {
            LocalClusterFs.DeleteDirectoryQuietly(DataDir);
            LocalClusterFs.DeleteDirectoryQuietly(SocketDir);
        }
        _lifecycle.Dispose();
    }

    public override string ToString() => $"LocalCluster {Name} (port {Port}, {DataDir})";

    // ---------------------------------------------------------------- internals

    private async Task StartCoreAsync(CancellationToken ct)
    {
        if (IsRunning)
            return;
        RemoveStaleLockFiles();

        long logOffset = File.Exists(LogFile) ? new FileInfo(LogFile).Length : 0;
        var timeout = ((int)Math.Ceiling(_options.StartStopTimeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        var result = await ProcessRunner.RunPgToolAsync(
            "pg_ctl", ["-D", DataDir, "-l", LogFile, "-w", "-t", timeout, "start"], throwOnError: false, ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            var log = ReadTail(LogFile, logOffset, 4000);
            var portInUse = log.Contains("could not bind", StringComparison.Ordinal) ||
                            log.Contains("Address already in use", StringComparison.Ordinal) ||
                            log.Contains("could not create any TCP/IP sockets", StringComparison.Ordinal);
            // A failed start may leave a postmaster half up; don't leak it.
            if (ReadPostmasterPid() is { } pid && PgProcesses.IsPostmasterOf(pid, DataDir))
            {
                PgProcesses.Kill(pid);
                await PgProcesses.WaitForExitAsync([pid], TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
            }
            RemoveStaleLockFiles();
            throw new ClusterStartException(
                $"pg_ctl start of cluster '{Name}' (port {Port}) failed with exit code {result.ExitCode}: {result.CombinedOutput}" +
                (log.Length > 0 ? $"{Environment.NewLine}--- {LogFile} ---{Environment.NewLine}{log}" : ""),
                portInUse);
        }
        await WaitForConnectionAsync(ct).ConfigureAwait(false);
    }

    private async Task StopCoreAsync(ShutdownMode mode, CancellationToken ct)
    {
        // Idle pooled connections would keep a smart shutdown waiting forever.
        ClearPools();
        if (!IsRunning)
        {
            RemoveStaleLockFiles();
            return;
        }
        var pid = ReadPostmasterPid();
        var modeArg = mode switch
        {
            ShutdownMode.Smart => "smart",
            ShutdownMode.Fast => "fast",
            ShutdownMode.Immediate => "immediate",
            _ => throw new ArgumentOutOfRangeException(nameof(mode)),
        };
        var timeout = ((int)Math.Ceiling(_options.StartStopTimeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        var result = await ProcessRunner.RunPgToolAsync(
            "pg_ctl", ["-D", DataDir, "-m", modeArg, "-w", "-t", timeout, "stop"], throwOnError: false, ct).ConfigureAwait(false);
        if (!result.Succeeded && IsRunning)
            throw new InvalidOperationException($"pg_ctl stop (-m {modeArg}) of cluster '{Name}' failed with exit code {result.ExitCode}: {result.CombinedOutput}");

        // pg_ctl -w returns once postmaster.pid is gone; make sure the process and port really are.
        if (pid is { } p)
            await PgProcesses.WaitForExitAsync([p], TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        if (Port > 0)
            await PgProcesses.WaitForPortFreeAsync(Port, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        RemoveStaleLockFiles();
        ClearPools();
    }

    private async Task WaitForConnectionAsync(CancellationToken ct)
    {
        var cs = BuildConnectionString("postgres", pooling: false);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var conn = new NpgsqlConnection(cs);
                await conn.OpenAsync(ct).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand("SELECT 1", conn);
                await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException && sw.Elapsed < ConnectTimeout)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task CreateDatabaseAsync(string database, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(BuildConnectionString("postgres", pooling: false));
        await conn.OpenAsync(ct).ConfigureAwait(false);
        await using (var check = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", conn))
        {
            check.Parameters.Add(new NpgsqlParameter { Value = database });
            if (await check.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null)
                return;
        }
        await using var create = new NpgsqlCommand($"CREATE DATABASE {QuoteIdentifier(database)}", conn);
        await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private string RenderConf()
    {
        var settings = new List<KeyValuePair<string, string>>
        {
            new("port", Port.ToString(CultureInfo.InvariantCulture)),
            new("listen_addresses", "127.0.0.1"),
            new("unix_socket_directories", SocketDir),
            new("wal_level", "logical"),
            new("max_replication_slots", "32"),
            new("max_wal_senders", "32"),
            new("max_worker_processes", "16"),
            new("track_commit_timestamp", "on"),
            new("fsync", _options.Durable ? "on" : "off"),
            new("full_page_writes", _options.Durable ? "on" : "off"),
            // Kept on even when not durable: off would delay logical decoding by up to wal_writer_delay.
            new("synchronous_commit", "on"),
            new("shared_buffers", "64MB"),
            new("max_connections", "100"),
            new("logging_collector", "off"),
            new("timezone", "UTC"),
            new("log_timezone", "UTC"),
            new("log_line_prefix", "%m [%p] %q%u@%d "),
        };
        foreach (var (key, value) in _options.Settings)
        {
            settings.RemoveAll(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase));
            settings.Add(new(key, value));
        }

        var sb = new StringBuilder();
        sb.Append("# Written by navette (LocalCluster) for cluster '").Append(Name.Replace("\n", " ", StringComparison.Ordinal)).Append("'.\n");
        foreach (var (key, value) in settings)
            sb.Append(key).Append(" = ").Append(QuoteConfValue(value)).Append('\n');
        return sb.ToString();
    }

    private int? ReadPostmasterPid()
    {
        try
        {
            using var reader = new StreamReader(Path.Combine(DataDir, "postmaster.pid"));
            var first = reader.ReadLine();
            return int.TryParse(first?.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Removes postmaster.pid and socket lock files left by a dead server (a PID may be reused later).</summary>
    private void RemoveStaleLockFiles()
    {
        if (IsRunning)
            return;
        TryDelete(Path.Combine(DataDir, "postmaster.pid"));
        if (Directory.Exists(SocketDir))
        {
            try
            {
                foreach (var f in Directory.EnumerateFiles(SocketDir, ".s.PGSQL.*"))
                    TryDelete(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    private void ClearPools()
    {
        NpgsqlDataSource? ds;
        lock (_dataSourceLock)
            ds = _dataSource;
        try
        {
            ds?.Clear();
            using var probe = new NpgsqlConnection(ConnectionString);
            NpgsqlConnection.ClearPool(probe);
        }
        catch (Exception)
        {
            // best effort
        }
    }

    private string BuildConnectionString(string database, bool pooling)
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Database = database,
            Username = "postgres",
            IncludeErrorDetail = true,
            Pooling = pooling,
        };
        return b.ConnectionString;
    }

    private static string CreateSocketDir()
    {
        // Unix socket paths are limited to ~107 bytes: keep this short, whatever TMPDIR says.
        var baseDir = Directory.Exists("/tmp") ? "/tmp" : Path.GetTempPath();
        for (var i = 0; ; i++)
        {
            var dir = Path.Combine(baseDir, "nvs-" + RandomToken(8));
            if (Directory.Exists(dir))
                continue;
            var info = Directory.CreateDirectory(dir);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(info.FullName,
                    UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                    UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                    UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            }
            return info.FullName;
        }
    }

    private static string RandomToken(int length)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        return string.Create(length, alphabet, static (span, a) =>
        {
            for (var i = 0; i < span.Length; i++)
                span[i] = a[System.Security.Cryptography.RandomNumberGenerator.GetInt32(a.Length)];
        });
    }

    private static void ValidateSettings(IDictionary<string, string>? settings)
    {
        if (settings is null)
            return;
        foreach (var key in settings.Keys)
        {
            if (key.Length == 0 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.'))
                throw new ArgumentException($"Invalid PostgreSQL setting name '{key}'.", nameof(settings));
        }
    }

    /// <summary>Quotes a postgresql.conf value: always single-quoted, with ' doubled and \ escaped.</summary>
    internal static string QuoteConfValue(string value) => Navette.Standby.ServerConf.Quote(value);

    /// <summary>Quotes a libpq keyword value when needed (spaces, quotes, backslashes or empty).</summary>
    internal static string LibpqQuote(string value) => Navette.Config.ConnInfo.Quote(value);

    internal static string QuoteIdentifier(string identifier) =>
        "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string ReadTail(string path, long fromOffset, int maxChars)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var start = Math.Max(fromOffset, fs.Length - maxChars * 4L);
            if (start > fs.Length)
                start = 0;
            fs.Seek(start, SeekOrigin.Begin);
            using var reader = new StreamReader(fs, Encoding.UTF8);
            var text = reader.ReadToEnd();
            return text.Length > maxChars ? text[^maxChars..] : text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>pg_ctl could not start a cluster.</summary>
internal sealed class ClusterStartException : Exception
{
    public ClusterStartException(string message, bool portInUse)
        : base(message)
    {
        PortInUse = portInUse;
    }

    /// <summary>The server log says the TCP port was taken.</summary>
    public bool PortInUse { get; }
}
