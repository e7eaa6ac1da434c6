namespace Navette.Capture;

/// <summary>
/// Bounds the memory of transactions received but not yet applied: the reader waits while more than the limit is held,
/// the applier releases what it committed. One transaction always passes, however large, so the stream never stalls
/// (the largest ones are spilled to disk and hold almost nothing here).
/// </summary>
internal sealed class InflightLimit(long limitBytes)
{
    private readonly SemaphoreSlim _released = new(0);
    private long _held;

    public long HeldBytes => Interlocked.Read(ref _held);

    public async ValueTask EnterAsync(long bytes, CancellationToken ct)
    {
        while (Interlocked.Read(ref _held) > 0 && Interlocked.Read(ref _held) + bytes > limitBytes)
            await _released.WaitAsync(TimeSpan.FromMilliseconds(100), ct);
        Interlocked.Add(ref _held, bytes);
    }

    public void Leave(long bytes)
    {
        Interlocked.Add(ref _held, -bytes);
        if (_released.CurrentCount == 0) _released.Release();
    }
}
