namespace Navette.Standby;

/// <summary>
/// A base backup copies the data directory only. Where the primary keeps postgresql.conf, pg_hba.conf and
/// pg_ident.conf elsewhere (Debian and Ubuntu: /etc/postgresql/N/main), the standby gets copies of them in its own
/// data directory, without the lines that would point it at the primary's files.
/// </summary>
internal static class ServerConfigFiles
{
    private static readonly HashSet<string> PrimaryOnly = new(StringComparer.OrdinalIgnoreCase)
    {
        "data_directory", "hba_file", "ident_file", "external_pid_file",
    };

    private static readonly HashSet<string> Includes = new(StringComparer.OrdinalIgnoreCase)
    {
        "include", "include_dir", "include_if_exists",
    };

    public static async Task CopyMissingAsync(PrimaryFacts facts, string pgdata, Action<string> say, CancellationToken ct)
    {
        await CopyAsync(facts["config_file"], pgdata, "postgresql.conf", RelocateConf, say, ct);
        await CopyAsync(facts["hba_file"], pgdata, "pg_hba.conf", (text, _) => text, say, ct);
        await CopyAsync(facts["ident_file"], pgdata, "pg_ident.conf", (text, _) => text, say, ct);
    }

    private static async Task CopyAsync(string? source, string pgdata, string name, Func<string, string, string> rewrite, Action<string> say, CancellationToken ct)
    {
        var target = Path.Combine(pgdata, name);
        if (File.Exists(target))
            return;
        if (source is null || !File.Exists(source))
        {
            throw new NavetteException($"the base backup has no {name} (the primary keeps it outside its data directory) and navette cannot read the primary's "
                + $"({source ?? "the role may not read its path"}); copy it into {pgdata} yourself, then start the standby with pg_ctl -D {pgdata} start");
        }

        await ServerConf.WriteOwnedAsync(target, rewrite(await File.ReadAllTextAsync(source, ct), Path.GetDirectoryName(source)!), ct);
        say($"copied {source} to {target} (the primary keeps it outside its data directory)");
    }

    /// <summary>
    /// Comments out the settings naming the primary's own files and makes relative includes absolute (they were
    /// relative to the primary's configuration folder).
    /// </summary>
    internal static string RelocateConf(string text, string sourceDir)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var name = ServerConf.SettingName(lines[i]);
            if (name is null)
                continue;
            if (PrimaryOnly.Contains(name))
            {
                lines[i] = "# navette: the primary's own file, not the standby's: " + lines[i].TrimEnd('\r');
                continue;
            }

            if (!Includes.Contains(name))
                continue;
            var start = lines[i].IndexOf('\'', StringComparison.Ordinal);
            var end = start < 0 ? -1 : lines[i].IndexOf('\'', start + 1);
            if (end > start + 1 && lines[i][start + 1] != '/')
            {
                var relative = lines[i][(start + 1)..end];
                lines[i] = lines[i][..(start + 1)] + Path.Combine(sourceDir, relative) + lines[i][end..];
            }
        }

        return string.Join('\n', lines);
    }
}
