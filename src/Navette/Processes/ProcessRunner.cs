using System.Diagnostics;
using System.Text;

namespace Navette.Processes;

/// <summary>Result of one finished child process.</summary>
internal sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Both streams, stderr last, trimmed (for error messages).</summary>
    public string CombinedOutput
    {
        get
        {
            var o = StdOut.Trim();
            var e = StdErr.Trim();
            if (o.Length == 0) return e;
            if (e.Length == 0) return o;
            return o + Environment.NewLine + e;
        }
    }
}

/// <summary>How <see cref="ProcessRunner"/> runs one command.</summary>
internal sealed class ProcessRunOptions
{
    /// <summary>Run the command as the <c>postgres</c> OS user (via <c>runuser -u postgres --</c>) when we are root.</summary>
    public bool AsPostgresUser { get; init; }

    /// <summary>Throw <see cref="ProcessFailedException"/> on a non-zero exit code (default true).</summary>
    public bool ThrowOnError { get; init; } = true;

    /// <summary>Working directory of the child; defaults to "/" so a dropped-privilege child never sits in an unreadable cwd.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Kill the process (tree) when it runs longer than this.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Extra environment variables for the child.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
}

/// <summary>A child process exited with a non-zero code.</summary>
internal sealed class ProcessFailedException : Exception
{
    public ProcessFailedException(string commandLine, ProcessResult result)
        : base(BuildMessage(commandLine, result))
    {
        CommandLine = commandLine;
        Result = result;
    }

    public string CommandLine { get; }
    public ProcessResult Result { get; }

    private static string BuildMessage(string commandLine, ProcessResult result)
    {
        var output = result.StdErr.Trim();
        if (output.Length == 0)
            output = result.StdOut.Trim();
        return $"'{commandLine}' exited with code {result.ExitCode}" + (output.Length > 0 ? ": " + output : ".");
    }
}

/// <summary>
/// Runs a program with an argument list (never a shell string) and captures its output.
/// </summary>
internal static class ProcessRunner
{
    private const string RunUser = "runuser";

    /// <summary>Runs <paramref name="file"/> and throws with its stderr when it fails.</summary>
    public static Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, CancellationToken ct = default)
        => RunAsync(file, args, new ProcessRunOptions(), ct);

    /// <summary>Runs a PostgreSQL server tool (resolved through <see cref="PgBinaries"/>) as the postgres user when root.</summary>
    public static Task<ProcessResult> RunPgToolAsync(string tool, IEnumerable<string> args, bool throwOnError = true, CancellationToken ct = default)
        => RunAsync(PgBinaries.Path(tool), args, new ProcessRunOptions { AsPostgresUser = true, ThrowOnError = throwOnError }, ct);

    public static async Task<ProcessResult> RunAsync(string file, IEnumerable<string> args, ProcessRunOptions options, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(file);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(options);

        var argList = args.ToList();
        var psi = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
            WorkingDirectory = options.WorkingDirectory ?? (OperatingSystem.IsWindows() ? "" : "/"),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };

        if (options.AsPostgresUser && PosixUser.IsRoot)
        {
            psi.FileName = RunUser;
            psi.ArgumentList.Add("-u");
            psi.ArgumentList.Add(PosixUser.PostgresUser);
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add(file);
        }
        else
        {
            psi.FileName = file;
        }
        foreach (var a in argList)
            psi.ArgumentList.Add(a);
        if (options.Environment is not null)
        {
            foreach (var (k, v) in options.Environment)
                psi.Environment[k] = v;
        }

        var commandLine = FormatCommandLine(psi.FileName, psi.ArgumentList);

        using var process = new Process { StartInfo = psi };
        try
        {
            if (!process.Start())
                throw new InvalidOperationException($"Could not start '{commandLine}'.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Could not start '{commandLine}': {e.Message}", e);
        }

        // No input: close stdin at once so a tool that reads it sees EOF instead of hanging.
        process.StandardInput.Close();

        var stdoutTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderrTask = process.StandardError.ReadToEndAsync(CancellationToken.None);

        using var timeoutCts = options.Timeout is { } t ? new CancellationTokenSource(t) : null;
        using var linked = timeoutCts is null
            ? CancellationTokenSource.CreateLinkedTokenSource(ct)
            : CancellationTokenSource.CreateLinkedTokenSource(ct, timeoutCts.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            TryKill(process);
            // Let the readers finish now the pipes are closed (bounded, the tree is dead).
            await Task.WhenAny(Task.WhenAll(stdoutTask, stderrTask), Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None)).ConfigureAwait(false);
            if (timeoutCts is not null && timeoutCts.IsCancellationRequested && !ct.IsCancellationRequested)
                throw new TimeoutException($"'{commandLine}' did not finish within {options.Timeout}.");
            throw;
        }

        var stdout = await stdoutTask.ConfigureAwait(false);
        var stderr = await stderrTask.ConfigureAwait(false);
        var result = new ProcessResult(process.ExitCode, stdout, stderr);
        if (options.ThrowOnError && result.ExitCode != 0)
            throw new ProcessFailedException(commandLine, result);
        return result;
    }

    private static void TryKill(Process process)
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }

    /// <summary>A readable, shell-like rendering of a command (for messages only; never executed).</summary>
    public static string FormatCommandLine(string file, IEnumerable<string> args)
    {
        var sb = new StringBuilder(Quote(file));
        foreach (var a in args)
            sb.Append(' ').Append(Quote(a));
        return sb.ToString();
    }

    private static string Quote(string s)
    {
        if (s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "-_./=:,@+%".Contains(c)))
            return s;
        return "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }
}
