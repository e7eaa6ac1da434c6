using Navette.Processes;

namespace Navette.Cli.Demo;

/// <summary>File-system chores for throwaway clusters: ownership, permissions, quiet deletes.</summary>
internal static class LocalClusterFs
{
    private const UnixFileMode Mode755 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>When root, gives <paramref name="path"/> (recursively) to the postgres OS user; otherwise a no-op.</summary>
    public static Task GiveToPostgresAsync(string path, CancellationToken ct) => PosixUser.GiveToPostgresAsync(path, ct);

    /// <summary>
    /// Creates <paramref name="dir"/> if needed and, when we are root, makes sure the postgres user
    /// can reach it: the directory itself gets mode 755 and every ancestor must be traversable by others.
    /// </summary>
    public static void EnsureReachableByPostgres(string dir)
    {
        var existed = Directory.Exists(dir);
        Directory.CreateDirectory(dir);
        if (OperatingSystem.IsWindows() || !PosixUser.IsRoot)
            return;
        if (!existed)
            File.SetUnixFileMode(dir, Mode755);

        for (var current = Path.GetDirectoryName(Path.GetFullPath(dir)); !string.IsNullOrEmpty(current); current = Path.GetDirectoryName(current))
        {
            UnixFileMode mode;
            try
            {
                mode = File.GetUnixFileMode(current);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if ((mode & UnixFileMode.OtherExecute) == 0)
            {
                throw new InvalidOperationException(
                    $"The postgres OS user cannot traverse '{current}' (mode {Convert.ToString((int)mode, 8)}), so it could not reach " +
                    $"'{dir}'. Put the cluster root under a world-traversable directory such as {Path.GetTempPath()}.");
            }
        }
    }

    /// <summary>Deletes a directory tree, ignoring a missing directory and any error.</summary>
    public static void DeleteDirectoryQuietly(string? dir)
    {
        if (string.IsNullOrEmpty(dir))
            return;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                if (!Directory.Exists(dir))
                    return;
                Directory.Delete(dir, recursive: true);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A file may still be created by a dying server process; try again shortly.
                Thread.Sleep(100);
            }
        }
    }
}
