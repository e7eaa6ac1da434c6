using System.Diagnostics;
using Npgsql;
using Xunit.Abstractions;

namespace Navette.Tests.Infrastructure;

/// <summary>
/// A client writing to a node in a loop, one transaction at a time, until stopped. It outlives the node going
/// away: a failed transaction is counted, the connection dropped, and the loop reconnects and goes on. Whatever
/// committed on the node is the truth tests compare against; the counters only show that writes happened.
/// </summary>
internal sealed class WriteLoad : IAsyncDisposable
{
    /// <summary>One transaction: runs on an open connection; returns normally once it has committed.</summary>
    public delegate Task Transaction(NpgsqlConnection conn, Random random, CancellationToken ct);

    /// <summary>Runs on every new connection before the first transaction (e.g. to read where a sequence is).</summary>
    public delegate Task Connected(NpgsqlConnection conn, CancellationToken ct);

    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly string _connectionString;
    private readonly Transaction _transaction;
    private readonly Connected? _connected;
    private readonly double _perSecond;
    private readonly ITestOutputHelper? _output;
    private readonly string _name;
    private readonly Random _random;
    private Task _loop = Task.CompletedTask;
    private long _committed;
    private long _failed;

    private WriteLoad(string name, string connectionString, Transaction transaction, Connected? connected, double perSecond, int seed, ITestOutputHelper? output)
    {
        _name = name;
        _connectionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5, CommandTimeout = 30 }.ConnectionString;
        _transaction = transaction;
        _connected = connected;
        _perSecond = perSecond;
        _random = new Random(seed);
        _output = output;
    }

    /// <summary>Starts the loop. <paramref name="perSecond"/> caps the rate (0: as fast as the node goes).</summary>
    public static WriteLoad Start(string name, string connectionString, Transaction transaction, double perSecond,
        ITestOutputHelper? output = null, Connected? connected = null, int seed = 42)
    {
        var load = new WriteLoad(name, connectionString, transaction, connected, perSecond, seed, output);
        load._loop = Task.Run(load.RunAsync);
        return load;
    }

    public long Committed => Interlocked.Read(ref _committed);
    public long Failed => Interlocked.Read(ref _failed);
    public string? LastError { get; private set; }

    /// <summary>Waits until at least <paramref name="count"/> more transactions committed.</summary>
    public async Task WaitForCommitsAsync(long count, TimeSpan timeout)
    {
        var target = Committed + count;
        var clock = Stopwatch.StartNew();
        while (Committed < target)
        {
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"write load {_name}: {Committed} commits, expected {target} within {timeout.TotalSeconds} s (last error: {LastError})");
            if (_loop.IsCompleted) await _loop;
            await Task.Delay(20);
        }
    }

    /// <summary>Lets the transaction in flight finish, then stops. Returns the number of committed transactions.</summary>
    public async Task<long> StopAsync()
    {
        await _stop.CancelAsync();
        if (await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(40))) != _loop)
            await _abort.CancelAsync();
        await _loop;
        Log($"stopped: {Committed} transactions committed, {Failed} failed");
        return Committed;
    }

    private async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        long sent = 0;
        while (!_stop.IsCancellationRequested)
        {
            NpgsqlConnection? conn = null;
            try
            {
                conn = new NpgsqlConnection(_connectionString);
                await conn.OpenAsync(_abort.Token);
                if (_connected is not null) await _connected(conn, _abort.Token);
                while (!_stop.IsCancellationRequested)
                {
                    await _transaction(conn, _random, _abort.Token);
                    Interlocked.Increment(ref _committed);
                    sent++;
                    if (_perSecond > 0)
                    {
                        var due = TimeSpan.FromSeconds(sent / _perSecond) - clock.Elapsed;
                        if (due > TimeSpan.FromMilliseconds(1))
                            await Task.Delay(due, _stop.Token);
                        else if (due < TimeSpan.FromSeconds(-1))
                        {
                            // Fell behind (an outage): do not burst to catch up.
                            clock.Restart();
                            sent = 0;
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or OperationCanceledException or InvalidOperationException)
            {
                Interlocked.Increment(ref _failed);
                if (LastError != e.Message) Log("transaction failed (reconnecting): " + e.Message);
                LastError = e.Message;
                try { await Task.Delay(200, _stop.Token); } catch (OperationCanceledException) { }
            }
            finally
            {
                if (conn is not null) await conn.DisposeAsync();
            }
        }
    }

    private void Log(string message)
    {
        try { _output?.WriteLine($"{DateTime.Now:HH:mm:ss.fff} load {_name}: {message}"); }
        catch (InvalidOperationException) { /* the test is over */ }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_loop.IsCompleted)
        {
            await _stop.CancelAsync();
            await _abort.CancelAsync();
            try { await _loop; } catch { /* disposing after a failure */ }
        }
        _stop.Dispose();
        _abort.Dispose();
    }
}
