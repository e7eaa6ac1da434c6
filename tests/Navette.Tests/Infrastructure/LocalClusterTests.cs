using System.Diagnostics;
using Navette.Cli.Demo;
using Navette.Processes;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Infrastructure;

public sealed class LocalClusterTests
{
    private readonly ITestOutputHelper _output;

    public LocalClusterTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task TwoClustersAtOnce_AreIndependent_AndLogical()
    {
        var sw = Stopwatch.StartNew();
        var startA = TestClusters.StartAsync("two-a");
        var startB = TestClusters.StartAsync("two-b");
        await Task.WhenAll(startA, startB);
        _output.WriteLine($"two clusters created in parallel in {sw.ElapsedMilliseconds} ms");
        await using var a = await startA;
        await using var b = await startB;

        Assert.NotEqual(a.Port, b.Port);
        Assert.NotEqual(a.DataDir, b.DataDir);
        Assert.True(a.IsRunning);
        Assert.True(b.IsRunning);

        await a.ExecuteAsync("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)");
        Assert.Equal(3, await a.ExecuteAsync("INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')"));
        await b.ExecuteAsync("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)");
        await b.ExecuteAsync("INSERT INTO items VALUES (10, 'ten')");

        Assert.Equal(new[] { "1:one", "2:two", "3:three" }, await ReadItemsAsync(a));
        Assert.Equal(new[] { "10:ten" }, await ReadItemsAsync(b));

        foreach (var c in new[] { a, b })
        {
            Assert.Equal("logical", await c.ScalarAsync<string>("SHOW wal_level"));
            Assert.Equal("on", await c.ScalarAsync<string>("SHOW track_commit_timestamp"));
            Assert.Equal("32", await c.ScalarAsync<string>("SHOW max_replication_slots"));
            Assert.Equal("off", await c.ScalarAsync<string>("SHOW fsync"));
            Assert.Equal("127.0.0.1", await c.ScalarAsync<string>("SHOW listen_addresses"));
            Assert.Equal(c.SocketDir, await c.ScalarAsync<string>("SHOW unix_socket_directories"));
            Assert.Equal("UTF8", await c.ScalarAsync<string>("SHOW server_encoding"));
            Assert.Equal(c.Port, await c.ScalarAsync<int>("SELECT inet_server_port()"));
        }
    }

    [Fact]
    public async Task CreatingOneCluster_ReusesTheTemplate()
    {
        // Warm the template (no-op when another test already did).
        await using (await TestClusters.StartAsync("warm")) { }

        var sw = Stopwatch.StartNew();
        await using var pg = await TestClusters.StartAsync("timed");
        var elapsed = sw.Elapsed;
        _output.WriteLine($"one cluster created (template cached) in {elapsed.TotalMilliseconds:F0} ms; PostgreSQL {PgBinaries.MajorVersion} from {PgBinaries.BinDir}");
        Assert.Equal(1, await pg.ScalarAsync<int>("SELECT 1"));
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"creating a cluster took {elapsed}");
        Assert.True(Directory.Exists(PgTemplate.DirectoryFor(PgBinaries.BinDir, PgBinaries.MajorVersion)));
        Assert.False(File.Exists(Path.Combine(pg.DataDir, "navette-template.ready")));
    }

    [Fact]
    public async Task FastAndImmediateStops_KeepCommittedRows()
    {
        await using var pg = await TestClusters.StartAsync("stops");
        await pg.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY)");
        await pg.ExecuteAsync("INSERT INTO t SELECT generate_series(1, 100)");
        _ = await pg.ScalarAsync<long>("SELECT count(*) FROM t"); // leave an idle pooled connection behind

        await pg.StopAsync(ShutdownMode.Fast);
        Assert.False(pg.IsRunning);
        Assert.False(File.Exists(Path.Combine(pg.DataDir, "postmaster.pid")));
        await Assert.ThrowsAnyAsync<Exception>(() => pg.ScalarAsync<long>("SELECT count(*) FROM t"));
        await pg.StopAsync(ShutdownMode.Fast); // stopping a stopped cluster is a no-op

        await pg.StartAsync();
        Assert.Equal(100L, await pg.ScalarAsync<long>("SELECT count(*) FROM t"));

        await pg.ExecuteAsync("INSERT INTO t SELECT generate_series(101, 150)");
        await pg.ExecuteAsync("CHECKPOINT");
        await pg.StopAsync(ShutdownMode.Immediate);
        Assert.False(pg.IsRunning);
        await pg.StartAsync();
        Assert.Equal(150L, await pg.ScalarAsync<long>("SELECT count(*) FROM t"));

        await pg.RestartAsync();
        Assert.Equal(150L, await pg.ScalarAsync<long>("SELECT count(*) FROM t"));

        // Smart shutdown must not hang on the data source's idle pooled connections.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await pg.StopAsync(ShutdownMode.Smart, cts.Token);
        Assert.False(pg.IsRunning);
        await pg.StartAsync();
        Assert.Equal(150L, await pg.ScalarAsync<long>("SELECT count(*) FROM t"));
    }

    [Fact]
    public async Task KillPostmaster_ThenStartRecovers()
    {
        await using var pg = await TestClusters.StartAsync("kill9");
        await pg.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text)");
        await pg.ExecuteAsync("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g");

        // A second, busy-but-idle session so the postmaster has a backend child when it dies.
        await using var extra = await pg.DataSource.OpenConnectionAsync();
        var oldPid = int.Parse(File.ReadLines(Path.Combine(pg.DataDir, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);

        await pg.KillPostmasterAsync();
        Assert.False(pg.IsRunning);
        Assert.False(PgProcesses.IsAlive(oldPid));
        Assert.False(await PgProcesses.IsPortAcceptingAsync(pg.Port));

        await pg.StartAsync();
        Assert.True(pg.IsRunning);
        Assert.Equal(500L, await pg.ScalarAsync<long>("SELECT count(*) FROM t"));
        await pg.ExecuteAsync("INSERT INTO t VALUES (501, 'after')");
        Assert.Equal("after", await pg.ScalarAsync<string>("SELECT v FROM t WHERE id = 501"));

        // Killing a stopped cluster is harmless too.
        await pg.StopAsync(ShutdownMode.Immediate);
        await pg.KillPostmasterAsync();
        await pg.StartAsync();
        Assert.Equal(501L, await pg.ScalarAsync<long>("SELECT count(*) FROM t"));
    }

    [Fact]
    public async Task Dispose_RemovesDirectories_AndNeverThrows()
    {
        var pg = await TestClusters.StartAsync("dispose");
        var dataDir = pg.DataDir;
        var socketDir = pg.SocketDir;
        var port = pg.Port;
        Assert.True(Directory.Exists(dataDir));
        Assert.True(Directory.Exists(socketDir));

        await pg.DisposeAsync();
        Assert.True(pg.IsDisposed);
        Assert.False(Directory.Exists(dataDir));
        Assert.False(Directory.Exists(socketDir));
        Assert.False(await PgProcesses.IsPortAcceptingAsync(port));
        await pg.DisposeAsync(); // twice is fine

        // Disposing an already stopped cluster is fine as well.
        var stopped = await TestClusters.StartAsync("dispose-stopped");
        await stopped.StopAsync();
        await stopped.DisposeAsync();
        Assert.False(Directory.Exists(stopped.DataDir));
    }

    [Fact]
    public async Task Keep_LeavesTheDataDirectory()
    {
        var pg = await TestClusters.StartAsync("keep", new LocalClusterOptions { Keep = true });
        var dataDir = pg.DataDir;
        await pg.DisposeAsync();
        try
        {
            Assert.True(File.Exists(Path.Combine(dataDir, "PG_VERSION")));
            Assert.False(File.Exists(Path.Combine(dataDir, "postmaster.pid")));
        }
        finally
        {
            LocalClusterFs.DeleteDirectoryQuietly(dataDir);
            LocalClusterFs.DeleteDirectoryQuietly(pg.SocketDir);
        }
    }

    [Fact]
    public async Task Options_DatabaseDurableAndSettings_AreApplied()
    {
        var options = new LocalClusterOptions
        {
            Database = "navette app",
            Durable = true,
            Settings = { ["work_mem"] = "8MB", ["cluster_name"] = "it's \"quoted\" \\ x", ["max_replication_slots"] = "40" },
        };
        await using var pg = await TestClusters.StartAsync("options", options);

        Assert.Equal("navette app", pg.Database);
        Assert.Equal("navette app", await pg.ScalarAsync<string>("SELECT current_database()"));
        Assert.Equal("on", await pg.ScalarAsync<string>("SHOW fsync"));
        Assert.Equal("on", await pg.ScalarAsync<string>("SHOW full_page_writes"));
        Assert.Equal("8MB", await pg.ScalarAsync<string>("SHOW work_mem"));
        Assert.Equal("40", await pg.ScalarAsync<string>("SHOW max_replication_slots"));
        Assert.Equal("it's \"quoted\" \\ x", await pg.ScalarAsync<string>("SHOW cluster_name"));

        Assert.Equal($"host=127.0.0.1 port={pg.Port} dbname='navette app' user=postgres", pg.ConnInfo);
        var csb = new NpgsqlConnectionStringBuilder(pg.ConnectionString);
        Assert.Equal("127.0.0.1", csb.Host);
        Assert.Equal(pg.Port, csb.Port);
        Assert.Equal("navette app", csb.Database);
        Assert.Equal("postgres", csb.Username);
        Assert.True(csb.IncludeErrorDetail);
        Assert.False(csb.Pooling); // ports are reused by later clusters: a pooled connection would be stale

        // A replication connection (trust auth) works: what the CDC code needs.
        await using var conn = new NpgsqlConnection(pg.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_create_logical_replication_slot('s1', 'test_decoding') IS NOT NULL", conn);
        Assert.Equal(true, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task ScalarAsync_ConvertsAndHandlesNull()
    {
        await using var pg = await TestClusters.StartAsync("scalar");
        Assert.Null(await pg.ScalarAsync<string>("SELECT NULL::text"));
        Assert.Null(await pg.ScalarAsync<int?>("SELECT NULL::int"));
        Assert.Equal(42L, await pg.ScalarAsync<long>("SELECT 42::int"));
        Assert.Equal(7, await pg.ScalarAsync<int?>("SELECT 7"));
    }

    [Fact]
    public void PgBinaries_FindsServerTools()
    {
        Assert.True(PgBinaries.IsAvailable);
        Assert.True(File.Exists(PgBinaries.Path("initdb")));
        Assert.True(File.Exists(PgBinaries.Path("pg_ctl")));
        Assert.True(PgBinaries.MajorVersion >= 10);
        Assert.Throws<InvalidOperationException>(() => PgBinaries.Path("no-such-tool"));
    }

    [Theory]
    [InlineData("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15)]
    [InlineData("postgres (PostgreSQL) 17.2", 17)]
    [InlineData("postgres (PostgreSQL) 18beta1", 18)]
    [InlineData("postgres (PostgreSQL) 9.6.24", 9)]
    public void ParseMajorVersion_ReadsVersionOutput(string text, int expected)
        => Assert.Equal(expected, PgBinaries.ParseMajorVersion(text));

    [Theory]
    [InlineData("on", "'on'")]
    [InlineData("it's", "'it''s'")]
    [InlineData(@"C:\x", @"'C:\\x'")]
    public void QuoteConfValue_Escapes(string value, string expected)
        => Assert.Equal(expected, LocalCluster.QuoteConfValue(value));

    [Theory]
    [InlineData("postgres", "postgres")]
    [InlineData("my db", "'my db'")]
    [InlineData("o'k", @"'o\'k'")]
    [InlineData("", "''")]
    public void LibpqQuote_QuotesWhenNeeded(string value, string expected)
        => Assert.Equal(expected, LocalCluster.LibpqQuote(value));

    [Fact]
    public async Task ProcessRunner_ReportsStderrOnFailure()
    {
        var ok = await ProcessRunner.RunAsync("sh", ["-c", "printf '%s' \"$1\"", "sh", "a b; $(no) 'shell'"]);
        Assert.Equal("a b; $(no) 'shell'", ok.StdOut);

        var e = await Assert.ThrowsAsync<ProcessFailedException>(() => ProcessRunner.RunAsync("sh", ["-c", "echo boom >&2; exit 3"]));
        Assert.Equal(3, e.Result.ExitCode);
        Assert.Contains("boom", e.Message, StringComparison.Ordinal);

        var soft = await ProcessRunner.RunAsync("sh", ["-c", "exit 4"], new ProcessRunOptions { ThrowOnError = false });
        Assert.Equal(4, soft.ExitCode);

        await Assert.ThrowsAsync<TimeoutException>(() =>
            ProcessRunner.RunAsync("sleep", ["30"], new ProcessRunOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
    }

    private static async Task<string[]> ReadItemsAsync(LocalCluster c)
    {
        var list = new List<string>();
        await using var cmd = c.DataSource.CreateCommand("SELECT id, label FROM items ORDER BY id");
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            list.Add($"{reader.GetInt32(0)}:{reader.GetString(1)}");
        return list.ToArray();
    }
}
