using System.Text;
using Navette.Processes;

namespace Navette.Standby;

/// <summary>
/// Settings written into a data directory's <c>postgresql.auto.conf</c>, the file ALTER SYSTEM and
/// pg_basebackup -R write (and the last one PostgreSQL reads, so its values win).
/// </summary>
internal static class ServerConf
{
    public const string AutoConfFile = "postgresql.auto.conf";

    /// <summary>Quotes a postgresql.conf value: always single-quoted, with ' doubled and \ escaped.</summary>
    public static string Quote(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// Sets each setting (a null value removes it) in <paramref name="pgdata"/>/postgresql.auto.conf: earlier lines for
    /// the same names are dropped, the new ones appended under <paramref name="comment"/>, every other line kept.
    /// The file is replaced atomically and, when we are root, owned by the postgres user like the rest of the data directory.
    /// </summary>
    public static async Task SetAsync(string pgdata, IReadOnlyList<KeyValuePair<string, string?>> settings, string comment, CancellationToken ct)
    {
        var path = Path.Combine(pgdata, AutoConfFile);
        var lines = File.Exists(path) ? (await File.ReadAllLinesAsync(path, ct)).ToList() : [];
        var names = settings.Select(s => s.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        lines.RemoveAll(l => SettingName(l) is { } name && names.Contains(name));
        var text = new StringBuilder();
        foreach (var line in lines)
            text.Append(line).Append('\n');
        text.Append("# ").Append(comment.ReplaceLineEndings(" ")).Append('\n');
        foreach (var (name, value) in settings)
        {
            if (value is not null)
                text.Append(name).Append(" = ").Append(Quote(value)).Append('\n');
        }

        await WriteOwnedAsync(path, text.ToString(), ct);
    }

    /// <summary>Reads the value a setting has in postgresql.auto.conf (the last line for it), or null.</summary>
    public static string? Read(string pgdata, string name)
    {
        var path = Path.Combine(pgdata, AutoConfFile);
        if (!File.Exists(path))
            return null;
        string? value = null;
        foreach (var line in File.ReadLines(path))
        {
            if (!string.Equals(SettingName(line), name, StringComparison.OrdinalIgnoreCase))
                continue;
            var raw = line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim();
            value = raw.Length >= 2 && raw[0] == '\'' && raw[^1] == '\''
                ? raw[1..^1].Replace("''", "'", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal)
                : raw;
        }

        return value;
    }

    /// <summary>Writes a file of the data directory through a temporary file and a rename, owned by the server's user.</summary>
    public static async Task WriteOwnedAsync(string path, string content, CancellationToken ct)
    {
        var temp = path + ".navette-tmp";
        await File.WriteAllTextAsync(temp, content, ct);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await PosixUser.GiveToPostgresAsync(temp, ct);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The setting a postgresql.conf line assigns (<c>name = value</c> or <c>name value</c>), or null.</summary>
    internal static string? SettingName(string line)
    {
        var t = line.TrimStart();
        var end = 0;
        while (end < t.Length && (char.IsAsciiLetterOrDigit(t[end]) || t[end] is '_' or '.'))
            end++;
        if (end == 0 || t[0] == '#')
            return null;
        var rest = t[end..].TrimStart();
        return rest.Length > 0 && (rest[0] == '=' || end < t.Length && char.IsWhiteSpace(t[end])) ? t[..end] : null;
    }
}
