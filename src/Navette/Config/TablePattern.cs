using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Navette.Config;

/// <summary>
/// One entry of a set's <c>tables</c> list: <c>schema.table</c>, where each part is either
/// a bare name (folded to lower case as PostgreSQL does, and allowed to use the glob wildcards
/// <c>*</c> and <c>?</c>) or a double-quoted name taken literally (dots, capitals, spaces, and
/// <c>""</c> for a quote character; wildcards inside quotes are ordinary characters).
/// </summary>
/// <param name="Schema">Schema name or pattern, as PostgreSQL stores it (unquoted, already folded).</param>
/// <param name="Table">Table name or pattern, as PostgreSQL stores it.</param>
/// <param name="Text">The entry exactly as written in the configuration file.</param>
/// <param name="Line">1-based line of the entry in the configuration file.</param>
internal sealed record TablePattern(string Schema, string Table, string Text, int Line)
{
    /// <summary>The schema part was double-quoted: it is matched literally, never as a glob.</summary>
    public bool SchemaQuoted { get; init; }

    /// <summary>The table part was double-quoted: it is matched literally, never as a glob.</summary>
    public bool TableQuoted { get; init; }

    /// <summary>True when either part contains an (unquoted) <c>*</c> or <c>?</c>.</summary>
    public bool IsPattern => (!SchemaQuoted && HasWildcard(Schema)) || (!TableQuoted && HasWildcard(Table));

    /// <summary>
    /// Case-sensitive match against a table as named in the catalog: <c>*</c> matches any run of
    /// characters (including none), <c>?</c> exactly one, everything else itself.
    /// </summary>
    public bool Matches(string schema, string table)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(table);
        return PartMatches(Schema, SchemaQuoted, schema) && PartMatches(Table, TableQuoted, table);
    }

    /// <summary>True when the pattern's schema part matches <paramref name="schema"/> (its tables may live there).</summary>
    public bool MatchesSchema(string schema) => PartMatches(Schema, SchemaQuoted, schema);

    /// <summary>The SQL form <c>"schema"."table"</c>, for exact (non-pattern) entries only.</summary>
    public string ToSqlName()
    {
        if (IsPattern)
        {
            throw new InvalidOperationException($"'{Text}' is a pattern, not a table name");
        }

        return QuoteIdentifier(Schema) + "." + QuoteIdentifier(Table);
    }

    public override string ToString() => Text;

    /// <summary>Parses an entry; throws <see cref="FormatException"/> with the reason when it is invalid.</summary>
    public static TablePattern Parse(string text, int line = 0)
    {
        if (!TryParse(text, line, out var pattern, out var error))
        {
            throw new FormatException(error);
        }

        return pattern;
    }

    /// <summary>Parses an entry; on failure <paramref name="error"/> says why, quoting the entry.</summary>
    public static bool TryParse(
        string text,
        int line,
        [NotNullWhen(true)] out TablePattern? pattern,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        pattern = null;
        error = null;

        if (string.IsNullOrWhiteSpace(text))
        {
            error = "table entry is empty";
            return false;
        }

        var parts = new List<(string Name, bool Quoted)>();
        var i = 0;
        var n = text.Length;
        while (true)
        {
            if (i == n || text[i] == '.')
            {
                error = $"'{text}' has an empty name part";
                return false;
            }

            if (text[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                var closed = false;
                while (i < n)
                {
                    if (text[i] == '"')
                    {
                        if (i + 1 < n && text[i + 1] == '"')
                        {
                            sb.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        closed = true;
                        break;
                    }

                    sb.Append(text[i]);
                    i++;
                }

                if (!closed)
                {
                    error = $"'{text}' has an unterminated quote";
                    return false;
                }

                if (sb.Length == 0)
                {
                    error = $"'{text}' has an empty name part";
                    return false;
                }

                if (i < n && text[i] != '.')
                {
                    error = $"'{text}' has characters after a closing quote";
                    return false;
                }

                parts.Add((sb.ToString(), true));
            }
            else
            {
                var start = i;
                while (i < n && text[i] != '.')
                {
                    var c = text[i];
                    if (c is '[' or ']')
                    {
                        error = $"'{text}' uses '[' or ']', which are not supported in patterns; use * or ?";
                        return false;
                    }

                    if (c == '"')
                    {
                        error = $"'{text}' has a quote inside an unquoted name; double-quote the whole name";
                        return false;
                    }

                    if (char.IsWhiteSpace(c))
                    {
                        error = $"'{text}' contains whitespace in an unquoted name; double-quote it, e.g. \"my table\"";
                        return false;
                    }

                    i++;
                }

                parts.Add((FoldAsciiLower(text[start..i]), false));
            }

            if (i < n && text[i] == '.')
            {
                i++;
                continue;
            }

            break;
        }

        if (parts.Count == 1)
        {
            error = $"'{text}' is not qualified with a schema; qualify it, e.g. public.orders";
            return false;
        }

        if (parts.Count > 2)
        {
            error = $"'{text}' has more than two parts; expected schema.table";
            return false;
        }

        pattern = new TablePattern(parts[0].Name, parts[1].Name, text, line)
        {
            SchemaQuoted = parts[0].Quoted,
            TableQuoted = parts[1].Quoted,
        };
        return true;
    }

    /// <summary>Glob match: <c>*</c> any run, <c>?</c> one character, ordinal comparison otherwise.</summary>
    internal static bool GlobMatches(string pattern, string value)
    {
        int p = 0, v = 0, starP = -1, starV = 0;
        while (v < value.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || (pattern[p] != '*' && pattern[p] == value[v])))
            {
                p++;
                v++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                starP = p++;
                starV = v;
            }
            else if (starP >= 0)
            {
                p = starP + 1;
                v = ++starV;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }

    internal static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static bool PartMatches(string part, bool quoted, string value) =>
        quoted || !HasWildcard(part) ? string.Equals(part, value, StringComparison.Ordinal) : GlobMatches(part, value);

    private static bool HasWildcard(string s) => s.AsSpan().IndexOfAny('*', '?') >= 0;

    /// <summary>PostgreSQL folds unquoted identifiers to lower case (ASCII letters only, for UTF-8 databases).</summary>
    private static string FoldAsciiLower(string s)
    {
        var chars = s.ToCharArray();
        for (var k = 0; k < chars.Length; k++)
        {
            if (chars[k] is >= 'A' and <= 'Z')
            {
                chars[k] = (char)(chars[k] + ('a' - 'A'));
            }
        }

        return new string(chars);
    }
}
