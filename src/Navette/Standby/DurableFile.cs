using System.Runtime.InteropServices;

namespace Navette.Standby;

/// <summary>File copies that appear whole under their final name: written to a temporary name, then renamed.</summary>
internal static class DurableFile
{
    private const int BufferSize = 1 << 20;

    /// <summary>
    /// Copies <paramref name="source"/> to <paramref name="temp"/> (replacing it), optionally fsyncs it, then renames it to
    /// <paramref name="target"/>. With <paramref name="replace"/> false the rename fails when the target exists
    /// (<see cref="IOException"/>), so a concurrent writer of the same name is never overwritten. Returns the bytes copied.
    /// </summary>
    public static async Task<long> CopyAsync(string source, string temp, string target, bool fsync, bool replace, CancellationToken ct)
    {
        long length;
        try
        {
            await using (var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, BufferSize, FileOptions.SequentialScan | FileOptions.Asynchronous))
            await using (var output = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
            {
                await input.CopyToAsync(output, BufferSize, ct);
                if (fsync)
                    output.Flush(flushToDisk: true);
                length = output.Length;
            }

            File.Move(temp, target, overwrite: replace);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        if (fsync)
            SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(target))!);
        return length;
    }

    /// <summary>True when both files hold the same bytes.</summary>
    public static async Task<bool> SameContentAsync(string a, string b, CancellationToken ct)
    {
        if (new FileInfo(a).Length != new FileInfo(b).Length)
            return false;
        await using var x = new FileStream(a, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, BufferSize, FileOptions.SequentialScan | FileOptions.Asynchronous);
        await using var y = new FileStream(b, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, BufferSize, FileOptions.SequentialScan | FileOptions.Asynchronous);
        var bx = new byte[BufferSize];
        var by = new byte[BufferSize];
        while (true)
        {
            var n = await x.ReadAtLeastAsync(bx, BufferSize, throwOnEndOfStream: false, ct);
            var m = await y.ReadAtLeastAsync(by, BufferSize, throwOnEndOfStream: false, ct);
            if (n != m || !bx.AsSpan(0, n).SequenceEqual(by.AsSpan(0, m)))
                return false;
            if (n < BufferSize)
                return true;
        }
    }

    /// <summary>fsync of a directory, so a rename in it survives a crash (no-op where unsupported).</summary>
    public static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows())
            return;
        var fd = NativeMethods.open(dir, NativeMethods.ORdOnly);
        if (fd < 0)
            throw new IOException($"cannot open directory {dir} to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (NativeMethods.fsync(fd) != 0)
                throw new IOException($"fsync of directory {dir} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static class NativeMethods
    {
        // O_RDONLY opens a directory too (O_DIRECTORY's value differs between architectures).
        public const int ORdOnly = 0;

        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
