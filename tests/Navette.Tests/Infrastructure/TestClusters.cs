using System.Collections.Concurrent;
using System.Globalization;
using Navette.Cli.Demo;
using Navette.Processes;

namespace Navette.Tests.Infrastructure;

/// <summary>
/// Throwaway PostgreSQL clusters for integration tests. All clusters of a test process live under one
/// per-process root (<see cref="RootDir"/>); whatever a test forgets to dispose is stopped and deleted
/// when the process exits. Dispose clusters in the test (<c>await using var pg = await TestClusters.StartAsync("x");</c>).
/// </summary>
internal static class TestClusters
{
    private const string RootPrefix = "navette-tests-";
    private static readonly Lazy<string> s_root = new(CreateRoot, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly ConcurrentDictionary<LocalCluster, byte> s_clusters = new();
    private static int s_counter;

    /// <summary>The per-process directory that holds this process's test clusters.</summary>
    public static string RootDir => s_root.Value;

    /// <summary>
    /// Creates and starts a cluster. <paramref name="name"/> is a prefix: a counter is appended so
    /// several tests may use the same name (the data dir is <c>RootDir/name-N</c>).
    /// </summary>
    public static async Task<LocalCluster> StartAsync(string name, LocalClusterOptions? o = null)
    {
        var unique = $"{name}-{Interlocked.Increment(ref s_counter).ToString(CultureInfo.InvariantCulture)}";
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var cluster = await LocalCluster.CreateAsync(unique, RootDir, o, cts.Token);
        s_clusters[cluster] = 0;
        return cluster;
    }

    /// <summary>Takes charge of a cluster made under <see cref="RootDir"/> by other means (a standby's base backup).</summary>
    public static LocalCluster Attach(string dataDir, int port)
    {
        var cluster = LocalCluster.Attach(dataDir, port);
        s_clusters[cluster] = 0;
        return cluster;
    }

    private static string CreateRoot()
    {
        RemoveLeftoversOfDeadProcesses();
        var dir = Path.Combine(Path.GetTempPath(),
            $"{RootPrefix}{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..6]}");
        LocalClusterFs.EnsureReachableByPostgres(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => CleanUp(dir);
        return dir;
    }

    private static void CleanUp(string root)
    {
        foreach (var cluster in s_clusters.Keys)
        {
            if (cluster.IsDisposed)
                continue;
            try
            {
                cluster.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(20));
            }
            catch (Exception)
            {
                // best effort at process exit
            }
        }
        LocalClusterFs.DeleteDirectoryQuietly(root);
    }

    /// <summary>Stops servers and deletes roots left by test processes that died without cleaning up.</summary>
    private static void RemoveLeftoversOfDeadProcesses()
    {
        try
        {
            foreach (var root in Directory.EnumerateDirectories(Path.GetTempPath(), RootPrefix + "*"))
            {
                var rest = Path.GetFileName(root)[RootPrefix.Length..];
                var dash = rest.IndexOf('-', StringComparison.Ordinal);
                if (dash <= 0 || !int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var ownerPid))
                    continue;
                if (PgProcesses.IsAlive(ownerPid))
                    continue;
                foreach (var dataDir in Directory.EnumerateDirectories(root))
                    KillServerOf(dataDir);
                LocalClusterFs.DeleteDirectoryQuietly(root);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static void KillServerOf(string dataDir)
    {
        try
        {
            var pidFile = Path.Combine(dataDir, "postmaster.pid");
            if (!File.Exists(pidFile))
                return;
            var first = File.ReadLines(pidFile).FirstOrDefault();
            if (int.TryParse(first, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && PgProcesses.IsPostmasterOf(pid, dataDir))
            {
                PgProcesses.Kill(pid);
                PgProcesses.WaitForExitAsync([pid], TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
