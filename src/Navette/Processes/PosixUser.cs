using System.Runtime.InteropServices;

namespace Navette.Processes;

/// <summary>
/// Small helpers about the current OS user. PostgreSQL refuses to run as root, so when we are
/// root every server tool is started as the <c>postgres</c> OS user via <c>runuser</c>.
/// </summary>
internal static class PosixUser
{
    /// <summary>The OS account that owns the throwaway clusters when the current user is root.</summary>
    public const string PostgresUser = "postgres";

    private static readonly Lazy<bool> s_isRoot = new(DetectRoot);
    private static readonly Lazy<uint?> s_euid = new(DetectEuid);

    /// <summary>True when running as root (user name "root" or effective uid 0).</summary>
    public static bool IsRoot => s_isRoot.Value;

    /// <summary>The effective uid, or null if it cannot be determined (non-Unix).</summary>
    public static uint? EffectiveUid => s_euid.Value;

    /// <summary>When root, gives <paramref name="path"/> (recursively) to the postgres OS user; otherwise a no-op.</summary>
    public static async Task GiveToPostgresAsync(string path, CancellationToken ct)
    {
        if (!IsRoot)
            return;
        // "postgres:" = the user and its login group.
        await ProcessRunner.RunAsync("chown", ["-R", PostgresUser + ":", path], ct).ConfigureAwait(false);
    }

    /// <summary>The parent process id (0 where unknown).</summary>
    public static int ParentProcessId => OperatingSystem.IsWindows() ? 0 : NativeMethods.getppid();

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when it failed (no such process, not ours).</summary>
    public static bool Signal(int pid, int signal) => !OperatingSystem.IsWindows() && NativeMethods.kill(pid, signal) == 0;

    /// <summary>SIGUSR1 on Linux: what pg_ctl sends the postmaster to request promotion.</summary>
    public const int SigUsr1 = 10;

    private static bool DetectRoot()
    {
        if (string.Equals(Environment.UserName, "root", StringComparison.Ordinal))
            return true;
        return EffectiveUid == 0;
    }

    private static uint? DetectEuid()
    {
        if (OperatingSystem.IsWindows())
            return null;
        try
        {
            return NativeMethods.geteuid();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return ReadUidFromProc();
        }
    }

    private static uint? ReadUidFromProc()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("Uid:", StringComparison.Ordinal))
                    continue;
                var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                // Uid: real effective saved fs
                if (parts.Length >= 3 && uint.TryParse(parts[2], out var euid))
                    return euid;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = false)]
        public static extern uint geteuid();

        [DllImport("libc", SetLastError = false)]
        public static extern int getppid();

        [DllImport("libc", SetLastError = true)]
        public static extern int kill(int pid, int sig);
    }
}
