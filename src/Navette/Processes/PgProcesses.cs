using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace Navette.Processes;

/// <summary>Process and port probing used to manage a local postmaster (Linux /proc aware).</summary>
internal static class PgProcesses
{
    /// <summary>
    /// True when <paramref name="pid"/> is a live process. A zombie (exited, not yet reaped, which
    /// happens to orphaned postmasters when PID 1 does not reap) counts as dead.
    /// </summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
            return false;
        if (Directory.Exists("/proc/self"))
        {
            var state = ReadState(pid);
            return state is not null && state != 'Z' && state != 'X' && state != 'x';
        }
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>True when <paramref name="pid"/> is alive and looks like a PostgreSQL server process.</summary>
    public static bool IsPostgres(int pid)
    {
        if (!IsAlive(pid))
            return false;
        try
        {
            var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
            return comm.StartsWith("postgres", StringComparison.Ordinal) || comm.StartsWith("postmaster", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No /proc (or it vanished): trust the liveness check.
            return !Directory.Exists("/proc/self");
        }
    }

    /// <summary>
    /// True when <paramref name="pid"/> is a live postmaster serving <paramref name="dataDir"/> (its command
    /// line is "postgres -D dataDir"); guards against a PID from a stale postmaster.pid reused by another process.
    /// </summary>
    public static bool IsPostmasterOf(int pid, string dataDir)
    {
        if (!IsPostgres(pid))
            return false;
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            if (cmdline.Length == 0)
                return true; // unreadable: trust the name check
            var full = Path.GetFullPath(dataDir).TrimEnd('/');
            return cmdline.Any(a => a.Length > 0 && a[0] == '/' && string.Equals(a.TrimEnd('/'), full, StringComparison.Ordinal));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return !Directory.Exists("/proc/self");
        }
    }

    /// <summary>Direct children of <paramref name="parentPid"/> (Linux only; empty elsewhere).</summary>
    public static List<int> ChildrenOf(int parentPid)
    {
        var result = new List<int>();
        if (!Directory.Exists("/proc/self"))
            return result;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                continue;
            var stat = ReadStat(pid);
            if (stat is null)
                continue;
            var fields = FieldsAfterComm(stat);
            // fields[0] = state, fields[1] = ppid
            if (fields.Length > 1 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ppid) && ppid == parentPid)
                result.Add(pid);
        }
        return result;
    }

    /// <summary>Sends SIGKILL to <paramref name="pid"/>; false if it was already gone.</summary>
    public static bool Kill(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            p.Kill();
            return true;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (InvalidOperationException)
        {
            return false; // already exited
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>Waits until none of <paramref name="pids"/> is alive; false on timeout.</summary>
    public static async Task<bool> WaitForExitAsync(IEnumerable<int> pids, TimeSpan timeout, CancellationToken ct = default)
    {
        var list = pids.ToList();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            list.RemoveAll(p => !IsAlive(p));
            if (list.Count == 0)
                return true;
            if (sw.Elapsed > timeout)
                return false;
            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    /// <summary>True when something accepts TCP connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task<bool> IsPortAcceptingAsync(int port, CancellationToken ct = default)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await socket.ConnectAsync(System.Net.IPAddress.Loopback, port, cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return true; // no refusal within the time: treat as busy
        }
    }

    /// <summary>Waits until nothing listens on 127.0.0.1:<paramref name="port"/>; false on timeout.</summary>
    public static async Task<bool> WaitForPortFreeAsync(int port, TimeSpan timeout, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        while (await IsPortAcceptingAsync(port, ct).ConfigureAwait(false))
        {
            if (sw.Elapsed > timeout)
                return false;
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>A loopback TCP port that is free right now (bind to port 0 and release it).</summary>
    public static int FindFreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static string? ReadStat(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static char? ReadState(int pid)
    {
        var stat = ReadStat(pid);
        if (stat is null)
            return null;
        var fields = FieldsAfterComm(stat);
        return fields.Length > 0 && fields[0].Length > 0 ? fields[0][0] : null;
    }

    // /proc/PID/stat is "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    private static string[] FieldsAfterComm(string stat)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0 || close + 1 >= stat.Length)
            return [];
        return stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }
}
