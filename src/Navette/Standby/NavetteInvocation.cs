using System.Reflection;

namespace Navette.Standby;

/// <summary>
/// The shell command PostgreSQL runs to call this navette again (archive_command, restore_command): the absolute
/// path of the executable, or <c>dotnet navette.dll</c> when navette runs through the dotnet host.
/// </summary>
internal static class NavetteInvocation
{
    /// <summary>Overrides the command, as shell words (e.g. a stable install path when navette runs from a build folder).</summary>
    public const string EnvVar = "NAVETTE_COMMAND";

    /// <summary>archive_command: <c>navette wal-archive ARCHIVE %p %f</c>.</summary>
    public static string ArchiveCommand(string archive) => Render(["wal-archive", archive], "%p %f");

    /// <summary>restore_command: <c>navette wal-restore ARCHIVE %f %p --max-wait S</c>.</summary>
    public static string RestoreCommand(string archive, double maxWaitSeconds) =>
        Render(["wal-restore", archive], "%f %p --max-wait " + maxWaitSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>True when <paramref name="command"/> is navette's own wal-archive into <paramref name="archive"/>.</summary>
    public static bool IsOurArchiveCommand(string command, out string? archive)
    {
        archive = null;
        var at = command.IndexOf(" wal-archive ", StringComparison.Ordinal);
        if (at < 0 || !command.EndsWith(" %p %f", StringComparison.Ordinal))
            return false;
        var quoted = command[(at + " wal-archive ".Length)..^" %p %f".Length].Trim();
        archive = Unquote(quoted).Replace("%%", "%", StringComparison.Ordinal);
        return true;
    }

    private static string Render(IEnumerable<string> args, string placeholders)
    {
        var words = args.Select(a => ShellQuote(a).Replace("%", "%%", StringComparison.Ordinal));
        return string.Join(' ', words.Prepend(Self())) + " " + placeholders;
    }

    private static string Self()
    {
        if (Environment.GetEnvironmentVariable(EnvVar) is { Length: > 0 } overridden)
            return overridden.Replace("%", "%%", StringComparison.Ordinal);
        return string.Join(' ', Executable().Select(a => ShellQuote(a).Replace("%", "%%", StringComparison.Ordinal)));
    }

    private static IEnumerable<string> Executable()
    {
        var process = Environment.ProcessPath ?? throw new NavetteException("cannot tell where the navette executable is; set " + EnvVar);
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            var dll = Assembly.GetEntryAssembly()?.Location;
            if (string.IsNullOrEmpty(dll))
                throw new NavetteException("cannot tell where navette.dll is; set " + EnvVar);
            return [process, dll];
        }

        return [process];
    }

    private static string ShellQuote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '=' or ':' or ',' or '+' or '@')
            ? s
            : "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string Unquote(string s) =>
        s.Length >= 2 && s[0] == '\'' && s[^1] == '\'' ? s[1..^1].Replace("'\\''", "'", StringComparison.Ordinal) : s;
}
