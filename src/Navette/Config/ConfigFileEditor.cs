using System.Globalization;
using System.Text;

namespace Navette.Config;

/// <summary>
/// Changes one entry of a section (a standby, a node) in the text of a configuration file and leaves every other
/// line as it was: comments, order, quoting and layout of the rest are the operator's. The result is validated as a
/// whole before it is written, and written atomically.
/// </summary>
internal static class ConfigFileEditor
{
    private const int DefaultIndent = 2;

    /// <summary>Adds or replaces <c>standbys.NAME</c>.</summary>
    public static string SetStandby(string text, string file, StandbyConfig standby) =>
        ReplaceEntry(text, file, "standbys", standby.Name, indent => RenderStandby(standby, indent));

    public static string RemoveStandby(string text, string file, string name) => ReplaceEntry(text, file, "standbys", name, null);

    /// <summary>Adds or replaces <c>nodes.NAME</c> as a one-line <c>NAME: { conninfo: "..." }</c> (with <c>fenced: true</c> when fenced).</summary>
    public static string SetNode(string text, string file, string name, string conninfo, bool fenced = false) =>
        ReplaceEntry(text, file, "nodes", name, indent => $"{new string(' ', indent)}{name}: {{ conninfo: {Quoted(conninfo)}{(fenced ? ", fenced: true" : "")} }}\n");

    /// <summary>
    /// Adds or replaces <c>subscriptions.NAME</c> as one line: from, to, sets, and the keys that differ from their
    /// defaults among initial_copy, forward, copy_schema and copy_workers.
    /// </summary>
    public static string SetSubscription(string text, string file, SubscriptionConfig sub) =>
        ReplaceEntry(text, file, "subscriptions", sub.Name, indent => RenderSubscription(sub, indent));

    public static string RemoveSubscription(string text, string file, string name) => ReplaceEntry(text, file, "subscriptions", name, null);

    public static string RemoveNode(string text, string file, string name) => ReplaceEntry(text, file, "nodes", name, null);

    /// <summary>
    /// Reads <paramref name="path"/>, applies <paramref name="edit"/>, validates the result (a <see cref="ConfigException"/>
    /// leaves the file untouched) and replaces the file with it. Returns the new configuration.
    /// </summary>
    public static async Task<NavetteConfig> UpdateAsync(string path, Func<string, string> edit, CancellationToken ct)
    {
        var text = await File.ReadAllTextAsync(path, ct);
        var updated = edit(text);
        var config = ConfigLoader.Parse(updated, path);
        var temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "." + Path.GetFileName(path) + ".navette-tmp");
        await File.WriteAllTextAsync(temp, updated, ct);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temp, File.GetUnixFileMode(path));
        File.Move(temp, path, overwrite: true);
        return config;
    }

    /// <summary>
    /// Checks, before any server is changed, that the file can take the edit: it is writable and the edited file is
    /// valid. Otherwise throws a <see cref="NavetteException"/> starting with <paramref name="refusal"/>.
    /// </summary>
    public static async Task CheckAsync(string path, Func<string, string> edit, string refusal, CancellationToken ct)
    {
        CheckWritable(path);
        try
        {
            ConfigLoader.Parse(edit(await File.ReadAllTextAsync(path, ct)), path);
        }
        catch (ConfigException e)
        {
            throw new NavetteException($"{refusal}: " + string.Join("; ", e.Errors.Select(x => x.Message)));
        }
    }

    /// <summary>Fails early (before any server is changed) when the file could not be rewritten later.</summary>
    public static void CheckWritable(string path)
    {
        try
        {
            using var _ = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            var probe = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "." + Path.GetFileName(path) + ".navette-tmp");
            File.WriteAllText(probe, string.Empty);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NavetteException($"{path} cannot be updated ({e.Message}); navette records standbys and role changes there, so it must be writable along with its folder");
        }
    }

    private static string ReplaceEntry(string text, string file, string section, string name, Func<int, string>? render)
    {
        var errors = new List<(int Line, string Message)>();
        var root = YamlTreeReader.Read(text, errors, out var syntaxError);
        if (syntaxError)
            throw new ConfigException(errors.Select(e => new ConfigError(file, e.Line, e.Message)).ToList());
        if (root is not YamlTreeMapping mapping)
            throw new ConfigException(new ConfigError(file, root?.Line ?? 1, "the top level must be a mapping; navette cannot add to it"));

        var doc = TextLines.Of(text);
        var lines = doc.Lines;
        var newline = doc.Newline;
        var topLines = mapping.Pairs.Select(p => p.Key.Line).Order().ToList();
        var sectionPair = mapping.Pairs.FirstOrDefault(p => p.Key is YamlTreeScalar { Value: var v } && v == section);

        if (sectionPair.Key is null)
        {
            if (render is null)
                return text;
            var addition = $"{section}:\n{render(DefaultIndent)}".Replace("\n", newline, StringComparison.Ordinal);
            var body = text.Length == 0 || text.EndsWith('\n') ? text : text + newline;
            return body + addition;
        }

        var keyLine = sectionPair.Key.Line;
        var sectionEnd = TrimTrailing(lines, keyLine, topLines.FirstOrDefault(l => l > keyLine, lines.Count + 1) - 1);
        switch (sectionPair.Value)
        {
            case YamlTreeScalar { IsNull: true }:
                // "standbys:" with nothing under it yet.
                return render is null ? text : doc.Splice(keyLine, keyLine, lines[keyLine - 1] + "\n" + render(DefaultIndent));

            case YamlTreeMapping { Pairs.Count: 0 } when sectionPair.Value.Line == keyLine:
                return render is null ? text : doc.Splice(keyLine, keyLine, $"{section}:\n{render(DefaultIndent)}");

            case YamlTreeMapping entries when entries.Line > keyLine:
            {
                var entryLines = entries.Pairs.Select(p => p.Key.Line).ToList();
                var indent = IndentOf(lines[entryLines[0] - 1]);
                var index = entries.Pairs.FindIndex(p => p.Key is YamlTreeScalar { Value: var v } && v == name);
                if (index < 0)
                {
                    if (render is null)
                        return text;
                    var last = entryLines[^1];
                    var lastEnd = TrimTrailing(lines, last, sectionEnd);
                    return doc.Splice(lastEnd + 1, lastEnd, render(indent));
                }

                var start = entryLines[index];
                var end = TrimTrailing(lines, start, index + 1 < entryLines.Count ? entryLines[index + 1] - 1 : sectionEnd);
                return doc.Splice(start, end, render?.Invoke(indent) ?? string.Empty);
            }

            default:
                throw new ConfigException(new ConfigError(file, keyLine,
                    $"'{section}' is written on one line (flow style); write it as a block, one entry per line, so navette can update it"));
        }
    }

    /// <summary>A file's lines (without their line ends), the line end it uses and whether its last line has one.</summary>
    private sealed record TextLines(List<string> Lines, string Newline, bool EndsWithNewline)
    {
        public static TextLines Of(string text)
        {
            var endsWithNewline = text.EndsWith('\n');
            var body = endsWithNewline ? text[..^1] : text;
            var lines = body.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
            return new TextLines(lines, text.Contains("\r\n", StringComparison.Ordinal) ? "\r\n" : "\n", endsWithNewline);
        }

        /// <summary>Replaces lines <paramref name="first"/>..<paramref name="last"/> (1-based, inclusive; last = first - 1 inserts).</summary>
        public string Splice(int first, int last, string replacement)
        {
            var sb = new StringBuilder();
            for (var i = 1; i < first; i++)
                sb.Append(Lines[i - 1]).Append(Newline);
            sb.Append(replacement.Replace("\n", Newline, StringComparison.Ordinal));
            for (var i = last + 1; i <= Lines.Count; i++)
            {
                sb.Append(Lines[i - 1]);
                if (i < Lines.Count || EndsWithNewline)
                    sb.Append(Newline);
            }

            return sb.ToString();
        }
    }

    /// <summary>Moves <paramref name="end"/> back over blank and comment lines, which belong to what follows.</summary>
    private static int TrimTrailing(List<string> lines, int start, int end)
    {
        end = Math.Min(end, lines.Count);
        while (end > start && (lines[end - 1].Trim().Length == 0 || lines[end - 1].TrimStart().StartsWith('#')))
            end--;
        return end;
    }

    private static int IndentOf(string line) => line.Length - line.TrimStart(' ').Length;

    private static string RenderStandby(StandbyConfig s, int indent)
    {
        var pad = new string(' ', indent);
        var inner = new string(' ', indent + DefaultIndent);
        var sb = new StringBuilder();
        sb.Append(pad).Append(s.Name).Append(":\n");
        void Field(string key, string value) => sb.Append(inner).Append(key).Append(": ").Append(value).Append('\n');
        Field("from", Scalar(s.From));
        Field("pgdata", Scalar(s.PgData));
        Field("port", s.Port.ToString(CultureInfo.InvariantCulture));
        if (s.Host != StandbyConfig.DefaultHost)
            Field("host", Scalar(s.Host));
        Field("mode", StandbyConfig.ModeName(s.Mode));
        Field("hot", s.Hot ? "true" : "false");
        if (s.Slot)
            Field("slot", "true");
        if (s.Archive is not null)
            Field("archive", Scalar(s.Archive));
        if (s.Delay is not null)
            Field("delay", Scalar(s.Delay));
        return sb.ToString();
    }

    private static string RenderSubscription(SubscriptionConfig s, int indent)
    {
        var sb = new StringBuilder();
        sb.Append(new string(' ', indent)).Append(s.Name).Append(": { from: ").Append(Scalar(s.From)).Append(", to: ").Append(Scalar(s.To))
          .Append(", sets: [").Append(string.Join(", ", s.Sets.Select(Scalar))).Append(']');
        if (s.InitialCopy != SubscriptionConfig.DefaultInitialCopy)
            sb.Append(", initial_copy: ").Append(s.InitialCopy ? "true" : "false");
        if (s.Forward != SubscriptionConfig.DefaultForward)
            sb.Append(", forward: ").Append(s.Forward ? "true" : "false");
        if (s.CopySchema != SubscriptionConfig.DefaultCopySchema)
            sb.Append(", copy_schema: ").Append(s.CopySchema ? "true" : "false");
        if (s.CopyWorkers != SubscriptionConfig.DefaultCopyWorkers)
            sb.Append(", copy_workers: ").Append(s.CopyWorkers.ToString(CultureInfo.InvariantCulture));
        return sb.Append(" }\n").ToString();
    }

    /// <summary>A plain scalar when it reads back as the same string, else a double-quoted one.</summary>
    internal static string Scalar(string value)
    {
        var plain = value.Length > 0
            && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '-' or '+')
            && value[0] is not ('-' or '+' or '.')
            && !double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            && value is not ("true" or "false" or "null" or "True" or "False" or "Null" or "TRUE" or "FALSE" or "NULL" or "yes" or "no" or "on" or "off");
        return plain ? value : Quoted(value);
    }

    internal static string Quoted(string value)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\t': sb.Append("\\t"); break;
                case < ' ': sb.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture)); break;
                default: sb.Append(c); break;
            }
        }

        return sb.Append('"').ToString();
    }
}
