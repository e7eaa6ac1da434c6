using System.Globalization;
using Navette.Processes;

namespace Navette.Tests.Faults;

/// <summary>
/// A small tmpfs mounted for a target tablespace, so that the target's disk can really fill up: <see cref="Fill"/>
/// shrinks the file system to what it already holds (the next page PostgreSQL needs fails with ENOSPC, SQLSTATE
/// 53100), <see cref="FreeAsync"/> gives it its size back. Needs root (mount); <see cref="Unavailable"/> says why not.
/// </summary>
internal sealed class TinyDisk : IAsyncDisposable
{
    private const long SizeBytes = 256L << 20;
    private readonly string _mountPoint;
    private bool _mounted;

    private TinyDisk(string mountPoint) => _mountPoint = mountPoint;

    /// <summary>The empty folder, owned by the postgres OS user, for <c>CREATE TABLESPACE ... LOCATION</c>.</summary>
    public string TablespaceDir => Path.Combine(_mountPoint, "ts");

    /// <summary>Why the disk could not be mounted (null when it is).</summary>
    public string? Unavailable { get; private set; }

    public static async Task<TinyDisk> MountAsync(string parent)
    {
        await UnmountLeftoversAsync();
        var disk = new TinyDisk(Path.Combine(parent, "tinydisk-" + Guid.NewGuid().ToString("N")[..8]));
        Directory.CreateDirectory(disk._mountPoint);
        if (!PosixUser.IsRoot)
        {
            disk.Unavailable = "not root: cannot mount a tmpfs";
            return disk;
        }
        var mount = await ProcessRunner.RunAsync("mount", ["-t", "tmpfs", "-o", $"size={SizeBytes}", "tmpfs", disk._mountPoint], new ProcessRunOptions { ThrowOnError = false }, CancellationToken.None);
        if (!mount.Succeeded)
        {
            disk.Unavailable = "mount -t tmpfs refused: " + mount.CombinedOutput.Trim();
            return disk;
        }
        disk._mounted = true;
        Directory.CreateDirectory(disk.TablespaceDir);
        await PosixUser.GiveToPostgresAsync(disk._mountPoint, CancellationToken.None);
        return disk;
    }

    /// <summary>
    /// Unmounts the tiny disks of test processes that died without disposing them (their root folders, named
    /// navette-tests-PID-..., are deleted by the next test process, which a mount inside would prevent).
    /// </summary>
    private static async Task UnmountLeftoversAsync()
    {
        if (!PosixUser.IsRoot || !File.Exists("/proc/mounts")) return;
        var prefix = Path.Combine(Path.GetTempPath(), "navette-tests-");
        foreach (var line in await File.ReadAllLinesAsync("/proc/mounts"))
        {
            var fields = line.Split(' ');
            if (fields.Length < 3 || fields[2] != "tmpfs" || !fields[1].StartsWith(prefix, StringComparison.Ordinal) || !fields[1].Contains("/tinydisk-", StringComparison.Ordinal)) continue;
            var rest = fields[1][prefix.Length..];
            var dash = rest.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0 || !int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || PgProcesses.IsAlive(pid)) continue;
            await ProcessRunner.RunAsync("umount", ["-l", fields[1]], new ProcessRunOptions { ThrowOnError = false }, CancellationToken.None);
        }
    }

    /// <summary>Bytes in use on the file system.</summary>
    public long UsedBytes
    {
        get
        {
            var d = new DriveInfo(_mountPoint);
            return d.TotalSize - d.AvailableFreeSpace;
        }
    }

    /// <summary>Makes the disk full: its size becomes what it holds now (tmpfs cannot shrink below that).</summary>
    public async Task FillAsync()
    {
        for (var slack = 0L; slack < 64L << 20; slack += 256 << 10)
        {
            var size = (UsedBytes + slack + 4095) / 4096 * 4096;
            var r = await ProcessRunner.RunAsync("mount", ["-o", $"remount,size={size.ToString(CultureInfo.InvariantCulture)}", _mountPoint], new ProcessRunOptions { ThrowOnError = false }, CancellationToken.None);
            if (r.Succeeded) return;
        }
        throw new InvalidOperationException($"could not shrink {_mountPoint} to fill it");
    }

    /// <summary>Gives the disk its room back.</summary>
    public async Task FreeAsync() =>
        await ProcessRunner.RunAsync("mount", ["-o", $"remount,size={SizeBytes.ToString(CultureInfo.InvariantCulture)}", _mountPoint], CancellationToken.None);

    /// <summary>Unmounts (after the cluster using it was stopped and deleted).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_mounted)
        {
            var r = await ProcessRunner.RunAsync("umount", [_mountPoint], new ProcessRunOptions { ThrowOnError = false }, CancellationToken.None);
            if (!r.Succeeded) await ProcessRunner.RunAsync("umount", ["-l", _mountPoint], new ProcessRunOptions { ThrowOnError = false }, CancellationToken.None);
            _mounted = false;
        }
        try { Directory.Delete(_mountPoint, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
