using System.Diagnostics;
using System.Globalization;
using Navette.Processes;

namespace Navette.Standby;

/// <summary>What <c>navette wal-restore</c> was asked for.</summary>
/// <param name="Archive">The archive folder.</param>
/// <param name="FileName">%f: the WAL file PostgreSQL wants.</param>
/// <param name="Destination">%p: where to put it (relative to <paramref name="DataDir"/>).</param>
/// <param name="DataDir">The standby's data directory (restore_command runs there).</param>
/// <param name="PollInterval">How often to look for a file that is not there yet.</param>
/// <param name="MaxWait">How long to wait for a WAL segment before telling PostgreSQL it is not available.</param>
/// <param name="TriggerFile">When this file appears, promotion is requested and waiting stops.</param>
internal sealed record WalRestoreRequest(
    string Archive,
    string FileName,
    string Destination,
    string DataDir,
    TimeSpan PollInterval,
    TimeSpan MaxWait,
    string? TriggerFile);

/// <summary>
/// <c>navette wal-restore ARCHIVE %f %p</c>, a standby's restore_command (what pg_standby did before PostgreSQL 14
/// removed it): waits for the next WAL segment to reach the archive, hands it over whole, and stops waiting as soon as
/// promotion is requested so recovery can end. Exit codes follow restore_command's contract: 0 = restored, 1 = not
/// available (never above 125, which would make PostgreSQL abort recovery).
/// </summary>
internal static class WalRestorer
{
    /// <summary>The file pg_ctl promote and pg_promote() create in the data directory.</summary>
    public const string PromoteSignalFile = "promote";

    private const long MinSegmentSize = 1 << 20;
    private const long MaxSegmentSize = 1L << 30;
    private static readonly TimeSpan SettleTime = TimeSpan.FromMilliseconds(100);

    public static async Task<int> RunAsync(WalRestoreRequest r, Action<string> log, Action<string> debug, CancellationToken ct)
    {
        var kind = WalFileName.Classify(r.FileName);
        if (r.FileName.Contains('/') || r.FileName.StartsWith('.'))
        {
            log($"refusing file name '{r.FileName}' (expected %f, a WAL file name)");
            return 1;
        }

        var source = Path.Combine(r.Archive, r.FileName);
        var destination = Path.GetFullPath(Path.Combine(r.DataDir, r.Destination));
        var parent = PosixUser.ParentProcessId;
        var expectedSize = kind == WalFileKind.Segment ? SegmentSizeOf(r.DataDir) : null;
        // Only segments are waited for: PostgreSQL probes for history files that may never exist and must hear "no" at once.
        var maxWait = kind == WalFileKind.Segment ? r.MaxWait : TimeSpan.Zero;
        if (kind == WalFileKind.Segment)
            RestoreProgress.Record(r.DataDir, RestoreProgress.Wanted, r.FileName);

        var clock = Stopwatch.StartNew();
        (long Length, DateTime Written)? seen = null;
        var looks = 0;
        while (true)
        {
            if (PosixUser.ParentProcessId != parent)
            {
                // The startup process is gone (server stopped): a late copy could land under a later restore's name.
                log($"the server stopped waiting for {r.FileName}; giving up");
                return 1;
            }

            var file = new FileInfo(source);
            if (file.Exists)
            {
                var now = (file.Length, file.LastWriteTimeUtc);
                if (Complete(kind, file.Length, expectedSize, stable: seen == now))
                    return await HandOverAsync(r, source, destination, kind, clock.Elapsed, log, ct);
                seen = now;
                looks++;
                if (kind != WalFileKind.Segment)
                {
                    if (looks > 50)
                    {
                        log($"{r.FileName} in {r.Archive} keeps changing; not restoring a file still being written");
                        return 1;
                    }

                    await Task.Delay(SettleTime, ct);
                    continue;
                }
            }
            else if (kind != WalFileKind.Segment)
            {
                debug($"{r.FileName} is not in {r.Archive}");
                return 1;
            }

            // A segment not there yet, or not whole yet. Files that are there are restored even once promotion is
            // requested (PostgreSQL replays all it can get before it ends recovery); only the waiting stops.
            if (PromotionRequested(r, log))
            {
                log($"promotion requested: not waiting for {r.FileName}; recovery ends with what was replayed");
                return 1;
            }

            // A second look is always allowed to a file whose size must settle, even without waiting (--max-wait 0).
            if (clock.Elapsed >= maxWait && !(file.Exists && looks == 1 && expectedSize is null))
            {
                if (file.Exists)
                    log($"{r.FileName} in {r.Archive} has {file.Length} bytes after {Seconds(clock.Elapsed)}, not a whole segment "
                        + $"({(expectedSize is { } e ? e.ToString(CultureInfo.InvariantCulture) + " bytes" : "a power of two from 1 MB to 1 GB")}); not restoring a partial file");
                else if (maxWait > TimeSpan.Zero)
                    log($"{r.FileName} is not in {r.Archive} after {Seconds(clock.Elapsed)}");
                else
                    debug($"{r.FileName} is not in {r.Archive}");
                return 1;
            }

            var pause = file.Exists && expectedSize is null ? Min(SettleTime, r.PollInterval) : r.PollInterval;
            var left = maxWait - clock.Elapsed;
            await Task.Delay(left > TimeSpan.Zero ? Min(pause, left) : SettleTime, ct);
        }
    }

    private static async Task<int> HandOverAsync(WalRestoreRequest r, string source, string destination, WalFileKind kind, TimeSpan waited, Action<string> log, CancellationToken ct)
    {
        // No fsync: PostgreSQL renames what it keeps durably itself, and a lost copy is simply restored again.
        var bytes = await DurableFile.CopyAsync(source, destination + ".navette-tmp", destination, fsync: false, replace: true, ct);
        if (kind == WalFileKind.Segment)
            RestoreProgress.Record(r.DataDir, RestoreProgress.Restored, r.FileName);
        log($"restored {r.FileName} ({WalArchiver.Size(bytes)})" + (waited > TimeSpan.FromSeconds(1) ? $" after waiting {Seconds(waited)}" : ""));
        return 0;
    }

    /// <summary>
    /// A file written by <c>navette wal-archive</c> (or any archiver that renames) is whole as soon as it is visible.
    /// Other archivers may still be writing it: a segment must have a whole segment's size, anything else must not
    /// have changed since the last look.
    /// </summary>
    private static bool Complete(WalFileKind kind, long length, long? expectedSize, bool stable)
    {
        if (kind != WalFileKind.Segment)
            return stable;
        if (expectedSize is { } size)
            return length == size;
        return stable && length >= MinSegmentSize && length <= MaxSegmentSize && (length & (length - 1)) == 0;
    }

    private static bool PromotionRequested(WalRestoreRequest r, Action<string> log)
    {
        if (File.Exists(Path.Combine(r.DataDir, PromoteSignalFile)))
            return true;
        if (r.TriggerFile is null || !File.Exists(r.TriggerFile))
            return false;

        // pg_standby's trigger file meant "fail over now". Since PostgreSQL 12 recovery only ends on promotion, so the
        // trigger asks for one the way pg_ctl promote does: the signal file, then SIGUSR1 to the postmaster.
        log($"trigger file {r.TriggerFile} found: requesting promotion");
        try
        {
            File.WriteAllText(Path.Combine(r.DataDir, PromoteSignalFile), string.Empty);
            if (PostmasterPid(r.DataDir) is { } pid && !PosixUser.Signal(pid, PosixUser.SigUsr1))
                log($"could not signal the postmaster (pid {pid}); run pg_ctl promote -D {r.DataDir}");
            File.Delete(r.TriggerFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log($"could not request promotion: {e.Message}");
        }

        return true;
    }

    /// <summary>The WAL segment size of the standby, from a segment already in its pg_wal (null when there is none).</summary>
    internal static long? SegmentSizeOf(string dataDir)
    {
        try
        {
            foreach (var f in new DirectoryInfo(Path.Combine(dataDir, "pg_wal")).EnumerateFiles())
            {
                if (WalFileName.IsSegment(f.Name) && f.Length >= MinSegmentSize && (f.Length & (f.Length - 1)) == 0)
                    return f.Length;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return null;
    }

    internal static int? PostmasterPid(string dataDir)
    {
        try
        {
            var first = File.ReadLines(Path.Combine(dataDir, "postmaster.pid")).FirstOrDefault();
            return int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + " s";
}
