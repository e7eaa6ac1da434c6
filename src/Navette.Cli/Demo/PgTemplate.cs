using System.Security.Cryptography;
using System.Text;
using Navette.Processes;

namespace Navette.Cli.Demo;

/// <summary>
/// A cached, freshly initdb'ed data directory that new clusters are copied from, so initdb runs
/// at most once per process and bin dir (and, thanks to the on-disk cache, usually once per machine).
/// Safe against concurrent creation: in-process by a semaphore, across processes by an exclusive
/// lock file plus an atomic rename of a fully built directory.
/// </summary>
internal static class PgTemplate
{
    private const string ReadyMarker = "navette-template.ready";

    private static readonly SemaphoreSlim s_gate = new(1, 1);
    private static readonly Dictionary<string, string> s_ready = new(StringComparer.Ordinal);

    /// <summary>The template directory for the current bin dir (may not exist yet).</summary>
    public static string DirectoryFor(string binDir, int major)
    {
        var uid = PosixUser.EffectiveUid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "x";
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(binDir + "\n" + uid)))[..12];
        return Path.Combine(Path.GetTempPath(), $"navette-pg-template-{major}-{hash}");
    }

    /// <summary>Returns the path of a ready template data directory, creating it if needed.</summary>
    public static async Task<string> GetAsync(CancellationToken ct)
    {
        var binDir = PgBinaries.BinDir;
        await s_gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (s_ready.TryGetValue(binDir, out var known) && IsReady(known))
                return known;

            var major = PgBinaries.MajorVersion;
            var dir = DirectoryFor(binDir, major);
            if (!IsReady(dir, major))
            {
                using var fileLock = await AcquireFileLockAsync(dir + ".lock", TimeSpan.FromMinutes(3), ct).ConfigureAwait(false);
                // Another process may have finished it while we waited for the lock.
                if (!IsReady(dir, major))
                    await BuildAsync(dir, major, ct).ConfigureAwait(false);
            }
            s_ready[binDir] = dir;
            return dir;
        }
        finally
        {
            s_gate.Release();
        }
    }

    private static bool IsReady(string dir, int? major = null)
    {
        if (!File.Exists(Path.Combine(dir, ReadyMarker)))
            return false;
        if (major is null)
            return true;
        try
        {
            var v = File.ReadAllText(Path.Combine(dir, "PG_VERSION")).Trim();
            return v == major.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static async Task BuildAsync(string dir, int major, CancellationToken ct)
    {
        var parent = Path.GetDirectoryName(dir)!;
        var staging = Path.Combine(parent, $"{Path.GetFileName(dir)}.tmp-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        // initdb wants to create (or own) the data dir itself; create the staging dir for it and hand it over.
        Directory.CreateDirectory(staging);
        try
        {
            await LocalClusterFs.GiveToPostgresAsync(staging, ct).ConfigureAwait(false);

            var baseArgs = new List<string> { "-D", staging, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync" };
            if (major >= 14)
                baseArgs.Add("--no-instructions");

            var withUtf8 = new List<string>(baseArgs) { "--locale=C.UTF-8" };
            var result = await ProcessRunner.RunPgToolAsync("initdb", withUtf8, throwOnError: false, ct).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                // Some systems lack the C.UTF-8 locale: wipe the half-made directory and use plain C.
                ResetDirectory(staging);
                await LocalClusterFs.GiveToPostgresAsync(staging, ct).ConfigureAwait(false);
                var withC = new List<string>(baseArgs) { "--locale=C" };
                var second = await ProcessRunner.RunPgToolAsync("initdb", withC, throwOnError: false, ct).ConfigureAwait(false);
                if (!second.Succeeded)
                {
                    throw new InvalidOperationException(
                        "initdb failed with --locale=C.UTF-8:" + Environment.NewLine + result.CombinedOutput + Environment.NewLine +
                        "and with --locale=C:" + Environment.NewLine + second.CombinedOutput);
                }
            }

            // The marker is written last: a directory without it is never used.
            await File.WriteAllTextAsync(Path.Combine(staging, ReadyMarker), DateTime.UtcNow.ToString("O"), ct).ConfigureAwait(false);

            if (Directory.Exists(dir))
                LocalClusterFs.DeleteDirectoryQuietly(dir); // a stale, half-built or old-version template
            Directory.Move(staging, dir);                   // atomic rename on the same file system
        }
        catch
        {
            LocalClusterFs.DeleteDirectoryQuietly(staging);
            throw;
        }
    }

    private static void ResetDirectory(string dir)
    {
        LocalClusterFs.DeleteDirectoryQuietly(dir);
        Directory.CreateDirectory(dir);
    }

    /// <summary>
    /// Takes an exclusive lock on <paramref name="path"/> (on Unix, .NET maps FileShare.None to an
    /// advisory flock), retrying until <paramref name="timeout"/>. The lock is released when the
    /// returned stream is disposed or the process dies.
    /// </summary>
    private static async Task<FileStream> AcquireFileLockAsync(string path, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
    }
}
