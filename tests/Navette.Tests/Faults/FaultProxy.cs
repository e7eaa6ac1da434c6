using System.Net;
using System.Net.Sockets;

namespace Navette.Tests.Faults;

/// <summary>
/// A TCP proxy on loopback between navette and one node, which a test cuts (every connection reset, new ones refused),
/// stalls (connections stay open but no byte moves either way) and resumes. Navette's conninfo names the proxy's port.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private enum Mode { Forwarding, Stalled, Cut }

    private readonly TcpListener _listener;
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<Link> _links = [];
    private readonly Task _accepting;
    private TaskCompletionSource _resumed = NewGate(open: true);
    private volatile Mode _mode = Mode.Forwarding;
    private long _connections;

    public FaultProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The port clients connect to.</summary>
    public int Port { get; }

    /// <summary>Connections accepted so far.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    public override string ToString() => $"proxy 127.0.0.1:{Port} -> {_upstreamPort} ({_mode})";

    /// <summary>Resets every open connection and refuses new ones (accepted, then reset at once) until <see cref="Resume"/>.</summary>
    public void Cut()
    {
        List<Link> links;
        lock (_lock)
        {
            _mode = Mode.Cut;
            links = [.. _links];
            _links.Clear();
        }
        foreach (var l in links) l.Reset();
    }

    /// <summary>No byte moves on open or new connections until <see cref="Resume"/>; nothing is closed.</summary>
    public void Stall()
    {
        lock (_lock)
        {
            if (_mode == Mode.Forwarding) _resumed = NewGate(open: false);
            _mode = Mode.Stalled;
        }
    }

    /// <summary>Back to forwarding: stalled bytes flow again, new connections are accepted.</summary>
    public void Resume()
    {
        lock (_lock)
        {
            _mode = Mode.Forwarding;
            _resumed.TrySetResult();
        }
    }

    private static TaskCompletionSource NewGate(bool open)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (open) tcs.SetResult();
        return tcs;
    }

    private Task Gate
    {
        get { lock (_lock) return _resumed.Task; }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        client.NoDelay = true;
        if (_mode == Mode.Cut)
        {
            Link.ResetSocket(client);
            return;
        }
        var upstream = new TcpClient { NoDelay = true };
        try
        {
            // A stalled node does not answer the connection either (as with a dropped route): wait for the resume.
            await Gate.WaitAsync(_stop.Token);
            await upstream.ConnectAsync(IPAddress.Loopback, _upstreamPort, _stop.Token);
        }
        catch (Exception)
        {
            Link.ResetSocket(client);
            upstream.Dispose();
            return;
        }
        var link = new Link(client, upstream);
        lock (_lock)
        {
            if (_mode == Mode.Cut)
            {
                link.Reset();
                return;
            }
            _links.Add(link);
        }
        var a = PumpAsync(client.GetStream(), upstream.GetStream());
        var b = PumpAsync(upstream.GetStream(), client.GetStream());
        await Task.WhenAny(a, b);
        link.Reset();
        lock (_lock) _links.Remove(link);
        try { await Task.WhenAll(a, b); } catch { /* the other side went too */ }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer, _stop.Token);
                if (n == 0) return;
                await Gate.WaitAsync(_stop.Token);
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try { await _accepting; } catch { /* stopping */ }
        List<Link> links;
        lock (_lock)
        {
            links = [.. _links];
            _links.Clear();
            _resumed.TrySetResult();
        }
        foreach (var l in links) l.Reset();
        _stop.Dispose();
    }

    private sealed class Link(TcpClient client, TcpClient upstream)
    {
        public void Reset()
        {
            ResetSocket(client);
            ResetSocket(upstream);
        }

        /// <summary>Closes with RST rather than FIN: the peer sees the connection broken, as when a route goes.</summary>
        public static void ResetSocket(TcpClient c)
        {
            try
            {
                if (c.Client is { } socket)
                {
                    socket.LingerState = new LingerOption(true, 0);
                    socket.Close();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            c.Dispose();
        }
    }
}
