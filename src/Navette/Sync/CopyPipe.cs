using System.Buffers;
using Npgsql;

namespace Navette.Sync;

/// <summary>
/// Streams one COPY from a source session into a COPY on a target session: binary as raw bytes (built-in types only),
/// otherwise as text. Reports rows and bytes as they pass.
/// </summary>
internal static class CopyPipe
{
    public static async Task RunAsync(NpgsqlConnection source, NpgsqlConnection target, CopyTable table, string copySource, byte[] buffer,
        Action<long, long> progress, CancellationToken ct)
    {
        var format = table.Binary ? "binary" : "text";
        var copyOut = $"COPY {copySource} TO STDOUT (FORMAT {format})";
        var copyIn = $"COPY {table.QualifiedName} ({table.ColumnList}) FROM STDIN (FORMAT {format})";
        if (table.Binary)
        {
            var counter = new CopyRowCounter(true);
            long counted = 0;
            await using var reader = await source.BeginRawBinaryCopyAsync(copyOut, ct);
            await using var writer = await target.BeginRawBinaryCopyAsync(copyIn, ct);
            int n;
            while ((n = await reader.ReadAsync(buffer, ct)) > 0)
            {
                counter.Feed(buffer.AsSpan(0, n));
                await writer.WriteAsync(buffer.AsMemory(0, n), ct);
                progress(counter.Rows - counted, n);
                counted = counter.Rows;
            }
            return;
        }
        // Text format (user-defined types, whose binary form embeds OIDs that differ between databases).
        var chars = ArrayPool<char>.Shared.Rent(buffer.Length / 2);
        try
        {
            using var reader = await source.BeginTextExportAsync(copyOut, ct);
            await using var writer = await target.BeginTextImportAsync(copyIn, ct);
            int n;
            while ((n = await reader.ReadAsync(chars.AsMemory(), ct)) > 0)
            {
                await writer.WriteAsync(chars.AsMemory(0, n), ct);
                progress(chars.AsSpan(0, n).Count('\n'), n);
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }
}
