using System.Globalization;

namespace Navette.Standby;

/// <summary>
/// <c>navette wal-archive ARCHIVE %p %f</c>, the primary's archive_command: copies one WAL file into the archive
/// folder so that it appears there whole or not at all (temporary name, fsync, rename, fsync of the folder), and
/// never replaces a different file of the same name.
/// </summary>
internal static class WalArchiver
{
    /// <summary>Prefix of the temporary files in the archive; <see cref="WalRestorer"/> never hands them out.</summary>
    public const string TempPrefix = ".navette-tmp.";

    /// <summary>Archives <paramref name="sourcePath"/> as <paramref name="fileName"/>; 0 on success, 1 when PostgreSQL must retry.</summary>
    public static async Task<int> RunAsync(string archiveDir, string sourcePath, string fileName, Action<string> log, CancellationToken ct)
    {
        if (fileName.Length == 0 || fileName.Contains('/') || fileName.StartsWith('.'))
        {
            log($"refusing file name '{fileName}': expected a WAL file name such as 000000010000000000000001 (%f)");
            return 1;
        }

        if (!Directory.Exists(archiveDir))
        {
            // Not created here: a missing folder is often an unmounted volume, and writing under the mount point would hide it.
            log($"archive folder {archiveDir} does not exist; create it (owned by the server's OS user) or mount it; {fileName} stays in pg_wal until then");
            return 1;
        }

        if (!File.Exists(sourcePath))
        {
            log($"{sourcePath} (for {fileName}) does not exist; archive_command must be called with %p as the file to archive");
            return 1;
        }

        var target = Path.Combine(archiveDir, fileName);
        if (File.Exists(target))
            return await AlreadyThereAsync(sourcePath, target, fileName, log, ct);

        var temp = Path.Combine(archiveDir, TempPrefix + fileName + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        try
        {
            var bytes = await DurableFile.CopyAsync(sourcePath, temp, target, fsync: true, replace: false, ct);
            log($"archived {fileName} ({Size(bytes)}) into {archiveDir}");
            return 0;
        }
        catch (IOException) when (File.Exists(target))
        {
            // Someone else put the same name there between our check and our rename.
            return await AlreadyThereAsync(sourcePath, target, fileName, log, ct);
        }
    }

    private static async Task<int> AlreadyThereAsync(string source, string target, string fileName, Action<string> log, CancellationToken ct)
    {
        if (await DurableFile.SameContentAsync(source, target, ct))
        {
            // PostgreSQL archives a file again when it crashed between the copy and marking it done.
            log($"{fileName} is already in the archive with the same content; nothing to do");
            return 0;
        }

        log($"refusing to overwrite {target}: it exists with different content ({Size(new FileInfo(target).Length)}, this one {Size(new FileInfo(source).Length)}). "
            + "Another server may be archiving into the same folder; give each primary its own archive, or move the old file away if it is known to be stale");
        return 1;
    }

    internal static string Size(long bytes) => bytes >= 1 << 20
        ? (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MB"
        : bytes.ToString(CultureInfo.InvariantCulture) + " B";
}
