using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Xunit.Abstractions;

namespace Navette.Tests.Infrastructure;

/// <summary>What a finished <c>navette</c> command printed and returned.</summary>
internal sealed record CliResult(int ExitCode, string StdOut, string StdErr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{StdOut}\n--- stderr ---\n{StdErr}";
}

/// <summary>
/// The real <c>navette</c> command as a separate OS process (<c>dotnet navette.dll ...</c>, built next to the
/// tests): the daemon that tests kill or signal, and one-shot commands such as status and wait. Its output goes
/// to the test output, prefixed with <see cref="Label"/>.
/// </summary>
internal sealed class NavetteProcess : IAsyncDisposable
{
    private const int SigInt = 2;
    private const int SigTerm = 15;
    private const int MaxKeptLines = 2000;

    private readonly Process _process;
    private readonly ITestOutputHelper _output;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly System.Text.StringBuilder _stdout = new();
    private readonly System.Text.StringBuilder _stderr = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _echo;

    public string Label { get; }
    public int Id { get; }

    public static string DllPath => Path.Combine(AppContext.BaseDirectory, "navette.dll");

    private static string Host =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p && File.Exists(p) ? p : "dotnet";

    private NavetteProcess(ITestOutputHelper output, string label, IReadOnlyList<string> args, bool echo, IReadOnlyDictionary<string, string>? environment = null)
    {
        _output = output;
        _echo = echo;
        Label = label;
        var psi = new ProcessStartInfo(Host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        psi.ArgumentList.Add(DllPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (ReplicationHarness.Level <= Microsoft.Extensions.Logging.LogLevel.Debug && args.Count > 0 && args[0] == "run")
            psi.ArgumentList.Add("--verbose");
        // Two cores are shared with the servers and the tests: keep the child's runtime small.
        psi.Environment["DOTNET_gcServer"] = "0";
        psi.Environment["DOTNET_TieredPGO"] = "0";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, _stdout, _stdoutClosed);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, _stderr, _stderrClosed);
        _process.Start();
        _process.StandardInput.Close();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Id = _process.Id;
        Write($"started pid {Id}: navette {string.Join(' ', args)}");
    }

    /// <summary>Starts <c>navette run -c <paramref name="configPath"/></c>.</summary>
    public static NavetteProcess StartDaemon(ITestOutputHelper output, string configPath, string label = "daemon", params string[] extraArgs) =>
        new(output, label, ["run", "-c", configPath, .. extraArgs], echo: true);

    /// <summary>Starts any command (e.g. <c>status --watch</c>) and leaves it running.</summary>
    public static NavetteProcess Start(ITestOutputHelper output, string label, params string[] args) => new(output, label, args, echo: true);

    /// <summary>Starts any command with extra environment variables (PGPASSFILE, PGPASSWORD...).</summary>
    public static NavetteProcess Start(ITestOutputHelper output, string label, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        new(output, label, args, echo: true, environment);

    /// <summary>Runs a one-shot command with extra environment variables to its end.</summary>
    public static async Task<CliResult> RunAsync(ITestOutputHelper output, TimeSpan timeout, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        await using var p = new NavetteProcess(output, "navette " + args[0], args, echo: true, environment);
        var code = await p.WaitForExitAsync(timeout);
        return new CliResult(code, p.StdOut, p.StdErr);
    }

    /// <summary>Runs a one-shot command to its end (killed after <paramref name="timeout"/>).</summary>
    public static async Task<CliResult> RunAsync(ITestOutputHelper output, TimeSpan timeout, params string[] args)
    {
        await using var p = new NavetteProcess(output, "navette " + args[0], args, echo: true);
        var code = await p.WaitForExitAsync(timeout);
        var result = new CliResult(code, p.StdOut, p.StdErr);
        return result;
    }

    public bool HasExited => _process.HasExited;
    public string StdOut { get { lock (_stdout) return _stdout.ToString(); } }
    public string StdErr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>The last lines printed (stdout and stderr interleaved).</summary>
    public string RecentOutput(int lines = 60) => string.Join('\n', _lines.TakeLast(lines));

    /// <summary>True once a line containing <paramref name="text"/> was printed.</summary>
    public bool Printed(string text) => _lines.Any(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>Waits until the process prints a line containing <paramref name="text"/> (false if it exits first).</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!Printed(text))
        {
            if (HasExited) return Printed(text);
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"{Label} (pid {Id}) did not print \"{text}\" within {timeout.TotalSeconds} s; last output:\n{RecentOutput()}");
            await Task.Delay(10);
        }
        return true;
    }

    /// <summary>SIGKILL: the process gets no chance to clean anything up.</summary>
    public void Kill()
    {
        Write("SIGKILL");
        try { _process.Kill(entireProcessTree: false); }
        catch (InvalidOperationException) { /* already gone */ }
    }

    /// <summary>SIGTERM, as a service manager stops a daemon.</summary>
    public void Terminate() => Signal(SigTerm, "SIGTERM");

    /// <summary>SIGINT, as Ctrl+C.</summary>
    public void Interrupt() => Signal(SigInt, "SIGINT");

    private void Signal(int signal, string name)
    {
        Write(name);
        if (kill(Id, signal) != 0)
            throw new InvalidOperationException($"kill({Id}, {name}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Waits for the process to exit and for its output to be read to the end; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Label} (pid {Id}) did not exit within {timeout.TotalSeconds} s; last output:\n{RecentOutput()}");
        }
        Write($"exited with code {_process.ExitCode}");
        return _process.ExitCode;
    }

    private void OnLine(string? line, System.Text.StringBuilder sink, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }
        lock (sink) sink.AppendLine(line);
        _lines.Enqueue(line);
        while (_lines.Count > MaxKeptLines) _lines.TryDequeue(out _);
        if (_echo) Write(line);
    }

    private void Write(string line)
    {
        try { _output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} [{Label}] {line}"); }
        catch (InvalidOperationException) { /* the test is over */ }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Kill();
            try { await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)); } catch (TimeoutException) { }
        }
        _process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
