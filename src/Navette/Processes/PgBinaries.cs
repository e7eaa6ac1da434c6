using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Navette.Processes;

/// <summary>
/// Locates the PostgreSQL server binaries (initdb, pg_ctl, postgres, ...).
/// Order: the NAVETTE_PG_BIN environment variable, then the highest /usr/lib/postgresql/N/bin
/// holding initdb (Debian/Ubuntu layout), then a few other common layouts and PATH.
/// </summary>
internal static partial class PgBinaries
{
    public const string EnvVar = "NAVETTE_PG_BIN";

    public const string NotFoundMessage =
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; run scripts/install-postgres.sh or set NAVETTE_PG_BIN";

    private static readonly Lazy<string?> s_binDir = new(FindBinDir);
    private static readonly Lazy<int> s_major = new(ReadMajorVersion);

    /// <summary>True when server binaries were found.</summary>
    public static bool IsAvailable => s_binDir.Value is not null;

    /// <summary>The directory holding initdb/pg_ctl/postgres. Throws when none is found.</summary>
    public static string BinDir => s_binDir.Value ?? throw new InvalidOperationException(NotFoundMessage);

    /// <summary>Major version of the server binaries (e.g. 15), from <c>postgres --version</c>.</summary>
    public static int MajorVersion => s_major.Value;

    /// <summary>Full path of one tool in <see cref="BinDir"/>, e.g. <c>Path("pg_ctl")</c>.</summary>
    public static string Path(string tool)
    {
        ArgumentException.ThrowIfNullOrEmpty(tool);
        var full = System.IO.Path.Combine(BinDir, tool);
        if (!File.Exists(full))
            throw new InvalidOperationException($"PostgreSQL tool '{tool}' not found in {BinDir}. " + NotFoundMessage);
        return full;
    }

    private static bool HasInitdb(string dir) => File.Exists(System.IO.Path.Combine(dir, "initdb"));

    private static string? FindBinDir()
    {
        var env = Environment.GetEnvironmentVariable(EnvVar);
        if (!string.IsNullOrWhiteSpace(env))
        {
            if (HasInitdb(env))
                return System.IO.Path.GetFullPath(env);
            throw new InvalidOperationException($"{EnvVar}={env} does not contain initdb. " + NotFoundMessage);
        }

        var best = HighestVersionedBin("/usr/lib/postgresql", name => name)   // Debian/Ubuntu: /usr/lib/postgresql/15/bin
                   ?? HighestVersionedBin("/usr", name => name.StartsWith("pgsql-", StringComparison.Ordinal) ? name["pgsql-".Length..] : null); // RHEL: /usr/pgsql-15/bin
        if (best is not null)
            return best;

        foreach (var dir in new[] { "/usr/local/pgsql/bin", "/usr/local/bin", "/usr/bin" })
        {
            if (HasInitdb(dir) && File.Exists(System.IO.Path.Combine(dir, "pg_ctl")))
                return dir;
        }

        var pathVar = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in pathVar.Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            if (HasInitdb(dir) && File.Exists(System.IO.Path.Combine(dir, "pg_ctl")))
                return dir;
        }
        return null;
    }

    /// <summary>Among parent/X/bin with initdb, picks the one whose X (mapped to a version string) is highest.</summary>
    private static string? HighestVersionedBin(string parent, Func<string, string?> versionOf)
    {
        if (!Directory.Exists(parent))
            return null;
        string? bestDir = null;
        Version? bestVersion = null;
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(parent).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        foreach (var dir in candidates)
        {
            var versionText = versionOf(System.IO.Path.GetFileName(dir));
            if (versionText is null || !TryParseVersion(versionText, out var version))
                continue;
            var bin = System.IO.Path.Combine(dir, "bin");
            if (!HasInitdb(bin))
                continue;
            if (bestVersion is null || version > bestVersion)
            {
                bestVersion = version;
                bestDir = bin;
            }
        }
        return bestDir;
    }

    private static bool TryParseVersion(string text, out Version version)
    {
        // "15" is not a valid System.Version by itself; normalise to "15.0".
        var t = text.Contains('.', StringComparison.Ordinal) ? text : text + ".0";
        if (Version.TryParse(t, out var v))
        {
            version = v;
            return true;
        }
        version = new Version(0, 0);
        return false;
    }

    private static int ReadMajorVersion()
    {
        var postgres = Path("postgres");
        var psi = new ProcessStartInfo(postgres, "--version")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        string output;
        using (var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not run {postgres} --version"))
        {
            var errTask = p.StandardError.ReadToEndAsync();
            output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(30_000))
            {
                try { p.Kill(); } catch (InvalidOperationException) { }
                throw new InvalidOperationException($"{postgres} --version did not finish.");
            }
            output += errTask.GetAwaiter().GetResult();
        }
        var major = ParseMajorVersion(output);
        if (major is null)
        {
            // Fall back to the PG_VERSION-like directory name (/usr/lib/postgresql/15/bin).
            var parent = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(BinDir) ?? "");
            if (int.TryParse(parent, NumberStyles.None, CultureInfo.InvariantCulture, out var m))
                return m;
            throw new InvalidOperationException($"Could not read the PostgreSQL version from '{output.Trim()}'.");
        }
        return major.Value;
    }

    /// <summary>Parses "postgres (PostgreSQL) 15.18 (Debian ...)" or "postgres (PostgreSQL) 9.6.24" into its major version.</summary>
    internal static int? ParseMajorVersion(string versionOutput)
    {
        var m = VersionRegex().Match(versionOutput);
        if (!m.Success)
            return null;
        var first = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        // Before 10, the major version had two parts (9.6); we only report the first for those.
        return first;
    }

    [GeneratedRegex(@"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")]
    private static partial Regex VersionRegex();
}
