using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Navette.Capture;

/// <summary>
/// The changes of one source transaction too large to keep in memory (<c>max_transaction_memory</c>), written to a
/// temporary file in blocks as they arrive and read back block by block by the applier, so the daemon holds one block of
/// such a transaction at a time whatever its size.
/// </summary>
/// <remarks>
/// The file is unlinked as soon as it is created: only the open handle keeps it, so nothing is left behind on disk when
/// the process is killed. Relations are written as indexes into <see cref="Relations"/>, and read back as the same
/// objects, which keeps the applier's per-relation caches and run detection (reference equality) working.
/// </remarks>
internal sealed class SpilledChanges : IAsyncDisposable
{
    private readonly FileStream _file;
    private readonly List<SourceRelation> _relations = new();
    private readonly Dictionary<SourceRelation, int> _relationIndex = new(ReferenceEqualityComparer.Instance);
    private readonly ArrayBufferWriter<byte> _block = new(1 << 20);
    private int _blockChanges;
    private bool _sealed;

    private SpilledChanges(FileStream file) => _file = file;

    /// <summary>Opens an anonymous spill file under <paramref name="directory"/> (the system's temporary directory when null).</summary>
    public static SpilledChanges Create(string? directory)
    {
        var dir = directory ?? Path.GetTempPath();
        var path = Path.Combine(dir, $"navette-spill-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NavetteException($"cannot create a spill file for a large source transaction in {dir}: {e.Message}; " +
                                       "make that directory writable (TMPDIR sets it) or raise max_transaction_memory");
        }
        // POSIX keeps an unlinked file readable through its open handle; on Windows the file stays until disposed.
        if (!OperatingSystem.IsWindows())
            File.Delete(path);
        return new SpilledChanges(file);
    }

    /// <summary>Number of row changes spilled.</summary>
    public int Count { get; private set; }

    public long FileBytes => _file.Length;

    /// <summary>Every table the spilled changes touch.</summary>
    public IReadOnlyList<SourceRelation> Relations => _relations;

    /// <summary>True when a compare, repair, schema-change or sequence marker is among the changes.</summary>
    public bool HasAction { get; private set; }

    /// <summary>Tables whose changes are dropped when read back (their join copy already holds them).</summary>
    public IReadOnlySet<(string Schema, string Name)>? SkipTables { get; set; }

    /// <summary>Appends <paramref name="changes"/> as one block and clears the list.</summary>
    public async ValueTask WriteAsync(List<RowChange> changes, CancellationToken ct)
    {
        if (_sealed) throw new InvalidOperationException("the spill file is already complete");
        foreach (var c in changes)
        {
            Encode(c);
            if (Markers.MarkerTables.IsAction(c.Relation)) HasAction = true;
        }
        Count += changes.Count;
        changes.Clear();
        await FlushBlockAsync(ct);
    }

    /// <summary>Writes what is left; the file is read only after this.</summary>
    public async ValueTask CompleteAsync(List<RowChange> rest, CancellationToken ct)
    {
        if (rest.Count > 0) await WriteAsync(rest, ct);
        await _file.FlushAsync(ct);
        _sealed = true;
    }

    /// <summary>Reads the changes back in source order, one block at a time; can be read again from the start.</summary>
    public async IAsyncEnumerable<List<RowChange>> ReadAsync([EnumeratorCancellation] CancellationToken ct)
    {
        if (!_sealed) throw new InvalidOperationException("the spill file is still being written");
        _file.Position = 0;
        var header = new byte[8];
        byte[]? buffer = null;
        try
        {
            while (_file.Position < _file.Length)
            {
                await _file.ReadExactlyAsync(header, ct);
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                var count = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
                if (buffer is null || buffer.Length < length)
                {
                    if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(length);
                }
                await _file.ReadExactlyAsync(buffer.AsMemory(0, length), ct);
                var block = DecodeBlock(buffer.AsSpan(0, length), count);
                if (block.Count > 0) yield return block;
            }
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public ValueTask DisposeAsync() => _file.DisposeAsync();

    private async ValueTask FlushBlockAsync(CancellationToken ct)
    {
        if (_blockChanges == 0) return;
        var header = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(header, _block.WrittenCount);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), _blockChanges);
        _file.Seek(0, SeekOrigin.End);
        await _file.WriteAsync(header, ct);
        await _file.WriteAsync(_block.WrittenMemory, ct);
        _block.ResetWrittenCount();
        _blockChanges = 0;
    }

    // Block layout, per change: kind (1 byte), relation index (4); a truncate adds its relation count, their indexes and
    // its two flags; otherwise the new then the old image, each a presence byte then per column a tag (0 null,
    // 1 value, 2 unchanged TOASTed value) and, for a value, its UTF-8 length (4) and bytes.
    private const byte Null = 0, Value = 1, UnchangedToast = 2;

    private void Encode(RowChange c)
    {
        WriteByte((byte)c.Kind);
        WriteInt(IndexOf(c.Relation));
        if (c.Kind == ChangeKind.Truncate)
        {
            var rels = c.TruncatedRelations ?? [c.Relation];
            WriteInt(rels.Length);
            foreach (var r in rels) WriteInt(IndexOf(r));
            WriteByte((byte)((c.TruncateCascade ? 1 : 0) | (c.TruncateRestartIdentity ? 2 : 0)));
        }
        else
        {
            EncodeImage(c.New);
            EncodeImage(c.Old);
        }
        _blockChanges++;
    }

    private void EncodeImage(RowImage? image)
    {
        if (image is null) { WriteByte(0); return; }
        WriteByte(1);
        WriteInt(image.Values.Length);
        for (var i = 0; i < image.Values.Length; i++)
        {
            if (image.IsUnchanged(i)) { WriteByte(UnchangedToast); continue; }
            var v = image.Values[i];
            if (v is null) { WriteByte(Null); continue; }
            WriteByte(Value);
            var max = Encoding.UTF8.GetMaxByteCount(v.Length);
            var span = _block.GetSpan(4 + max);
            var n = Encoding.UTF8.GetBytes(v, span[4..]);
            BinaryPrimitives.WriteInt32LittleEndian(span, n);
            _block.Advance(4 + n);
        }
    }

    private int IndexOf(SourceRelation rel)
    {
        if (_relationIndex.TryGetValue(rel, out var i)) return i;
        i = _relations.Count;
        _relations.Add(rel);
        _relationIndex[rel] = i;
        return i;
    }

    private void WriteByte(byte b)
    {
        _block.GetSpan(1)[0] = b;
        _block.Advance(1);
    }

    private void WriteInt(int v)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_block.GetSpan(4), v);
        _block.Advance(4);
    }

    private List<RowChange> DecodeBlock(ReadOnlySpan<byte> data, int count)
    {
        var changes = new List<RowChange>(count);
        var skip = SkipTables;
        var pos = 0;
        for (var n = 0; n < count; n++)
        {
            var kind = (ChangeKind)data[pos++];
            var rel = _relations[ReadInt(data, ref pos)];
            RowChange change;
            if (kind == ChangeKind.Truncate)
            {
                var rels = new SourceRelation[ReadInt(data, ref pos)];
                for (var i = 0; i < rels.Length; i++) rels[i] = _relations[ReadInt(data, ref pos)];
                var flags = data[pos++];
                change = new RowChange
                {
                    Kind = kind, Relation = rel, TruncatedRelations = rels,
                    TruncateCascade = (flags & 1) != 0, TruncateRestartIdentity = (flags & 2) != 0,
                };
            }
            else
            {
                var newImage = DecodeImage(data, ref pos);
                var oldImage = DecodeImage(data, ref pos);
                change = new RowChange { Kind = kind, Relation = rel, New = newImage, Old = oldImage };
            }
            if (skip is null || !skip.Contains((rel.Schema, rel.Name)))
                changes.Add(change);
        }
        return changes;
    }

    private static RowImage? DecodeImage(ReadOnlySpan<byte> data, ref int pos)
    {
        if (data[pos++] == 0) return null;
        var values = new string?[ReadInt(data, ref pos)];
        bool[]? unchanged = null;
        for (var i = 0; i < values.Length; i++)
        {
            switch (data[pos++])
            {
                case UnchangedToast:
                    unchanged ??= new bool[values.Length];
                    unchanged[i] = true;
                    break;
                case Value:
                    var n = ReadInt(data, ref pos);
                    values[i] = Encoding.UTF8.GetString(data.Slice(pos, n));
                    pos += n;
                    break;
            }
        }
        return new RowImage(values, unchanged);
    }

    private static int ReadInt(ReadOnlySpan<byte> data, ref int pos)
    {
        var v = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
        pos += 4;
        return v;
    }
}
