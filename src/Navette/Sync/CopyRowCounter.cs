using System.Buffers.Binary;

namespace Navette.Sync;

/// <summary>
/// Counts rows in a COPY stream as it passes through, without buffering it: newlines for text format,
/// tuple headers for binary format (header, then per tuple an int16 field count and length-prefixed fields).
/// </summary>
internal sealed class CopyRowCounter(bool binary)
{
    private enum State { Header, TupleCount, FieldLength, FieldData, Done }

    private State _state = State.Header;
    private readonly byte[] _scratch = new byte[19];
    private int _scratchFill;
    private int _need = 19; // signature (11) + flags (4) + extension length (4)
    private long _skip;
    private int _fieldsLeft;

    public long Rows { get; private set; }

    public void Feed(ReadOnlySpan<byte> data)
    {
        if (!binary)
        {
            Rows += data.Count((byte)'\n');
            return;
        }
        while (!data.IsEmpty && _state != State.Done)
        {
            if (_skip > 0)
            {
                var n = (int)Math.Min(_skip, data.Length);
                _skip -= n;
                data = data[n..];
                continue;
            }
            var take = Math.Min(_need - _scratchFill, data.Length);
            data[..take].CopyTo(_scratch.AsSpan(_scratchFill));
            _scratchFill += take;
            data = data[take..];
            if (_scratchFill < _need) return;
            _scratchFill = 0;
            switch (_state)
            {
                case State.Header:
                    // The last 4 header bytes are the extension area length, skipped as-is.
                    _skip = BinaryPrimitives.ReadInt32BigEndian(_scratch.AsSpan(15, 4));
                    _state = State.TupleCount;
                    _need = 2;
                    break;
                case State.TupleCount:
                    _fieldsLeft = BinaryPrimitives.ReadInt16BigEndian(_scratch);
                    if (_fieldsLeft < 0) { _state = State.Done; break; }
                    Rows++;
                    _state = _fieldsLeft == 0 ? State.TupleCount : State.FieldLength;
                    _need = _fieldsLeft == 0 ? 2 : 4;
                    break;
                case State.FieldLength:
                    var len = BinaryPrimitives.ReadInt32BigEndian(_scratch);
                    if (len > 0) _skip = len;
                    _fieldsLeft--;
                    _state = _fieldsLeft == 0 ? State.TupleCount : State.FieldLength;
                    _need = _fieldsLeft == 0 ? 2 : 4;
                    break;
            }
        }
    }
}
