using System.Globalization;
using System.Text;

namespace Navette.Synchronous;

/// <summary>How PostgreSQL picks the synchronous standbys among those listed.</summary>
internal enum SyncMethod
{
    /// <summary><c>FIRST n (...)</c>, or a bare list (FIRST 1): the n highest-priority connected standbys.</summary>
    First,

    /// <summary><c>ANY n (...)</c>: any n of them (quorum).</summary>
    Any,
}

/// <summary>
/// A parsed <c>synchronous_standby_names</c>: <c>[FIRST|ANY] n (name, ...)</c> or a bare list (FIRST 1), names compared
/// case-insensitively by PostgreSQL, optionally double-quoted, <c>*</c> matching any standby.
/// An empty value (no synchronous standby) has no names.
/// </summary>
internal sealed record StandbyNames(SyncMethod Method, int Count, IReadOnlyList<string> Names)
{
    /// <summary>The application_name prefix of navette's walsenders: names with it belong to navette.</summary>
    public const string NavettePrefix = "navette_";

    public static readonly StandbyNames None = new(SyncMethod.Any, 0, []);

    public bool IsEmpty => Names.Count == 0;

    public static bool IsNavette(string name) => name.StartsWith(NavettePrefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>The names navette owns (its walsenders' application_name).</summary>
    public IReadOnlyList<string> NavetteNames => Names.Where(IsNavette).ToList();

    /// <summary>The names of other standbys (physical standbys, other subscribers), in their order.</summary>
    public IReadOnlyList<string> ForeignNames => Names.Where(n => !IsNavette(n)).ToList();

    public bool Lists(string name) => Names.Any(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The value as PostgreSQL reads it: <c>ANY 1 (navette_a, navette_b)</c>, or empty.</summary>
    public string Format()
    {
        if (IsEmpty) return "";
        var method = Method == SyncMethod.Any ? "ANY" : "FIRST";
        return $"{method} {Count.ToString(CultureInfo.InvariantCulture)} ({string.Join(", ", Names.Select(QuoteName))})";
    }

    public override string ToString() => Format();

    /// <summary>A name as the setting's scanner reads it back: bare when it is a plain identifier (not a keyword), else double-quoted.</summary>
    internal static string QuoteName(string name)
    {
        if (name == "*") return name;
        var plain = name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_')
                    && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '$')
                    && !name.Equals("ANY", StringComparison.OrdinalIgnoreCase) && !name.Equals("FIRST", StringComparison.OrdinalIgnoreCase);
        return plain ? name : "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>Parses the setting as PostgreSQL's syncrep grammar does; false with a reason when it does not.</summary>
    public static bool TryParse(string? text, out StandbyNames result, out string problem)
    {
        result = None;
        problem = "";
        var tokens = new List<(char Kind, string Text)>(); // N = name, # = number, K = keyword, or the punctuation itself
        var s = text ?? "";
        var i = 0;
        while (i < s.Length)
        {
            var c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c is ',' or '(' or ')') { tokens.Add((c, c.ToString())); i++; continue; }
            if (c == '*') { tokens.Add(('N', "*")); i++; continue; }
            if (c == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= s.Length) { problem = "unterminated quoted name"; return false; }
                    if (s[i] == '"')
                    {
                        if (i + 1 < s.Length && s[i + 1] == '"') { sb.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    sb.Append(s[i++]);
                }
                tokens.Add(('N', sb.ToString()));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                var start = i;
                while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                tokens.Add(('#', s[start..i]));
                continue;
            }
            if (char.IsAsciiLetter(c) || c == '_' || c >= 0x80)
            {
                var start = i;
                while (i < s.Length && (char.IsAsciiLetterOrDigit(s[i]) || s[i] is '_' or '$' || s[i] >= 0x80)) i++;
                var word = s[start..i];
                tokens.Add(word.Equals("ANY", StringComparison.OrdinalIgnoreCase) || word.Equals("FIRST", StringComparison.OrdinalIgnoreCase)
                    ? ('K', word.ToUpperInvariant())
                    : ('N', word));
                continue;
            }
            problem = $"unexpected character '{c}'";
            return false;
        }
        if (tokens.Count == 0) return true;

        var pos = 0;
        var method = SyncMethod.First;
        var count = 1;
        var grouped = false;
        if (tokens[0].Kind == 'K')
        {
            method = tokens[0].Text == "ANY" ? SyncMethod.Any : SyncMethod.First;
            pos = 1;
            if (pos >= tokens.Count || tokens[pos].Kind != '#') { problem = $"{tokens[0].Text} must be followed by a number"; return false; }
        }
        if (pos < tokens.Count && tokens[pos].Kind == '#' && pos + 1 < tokens.Count && tokens[pos + 1].Kind == '(')
        {
            if (!int.TryParse(tokens[pos].Text, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1)
            {
                problem = "the number of synchronous standbys must be at least 1";
                return false;
            }
            pos += 2;
            grouped = true;
        }
        else if (pos > 0)
        {
            problem = "the number must be followed by a parenthesised list of names";
            return false;
        }

        var names = new List<string>();
        while (true)
        {
            if (pos >= tokens.Count || tokens[pos].Kind is not ('N' or '#')) { problem = "a standby name was expected"; return false; }
            names.Add(tokens[pos].Text);
            pos++;
            if (pos < tokens.Count && tokens[pos].Kind == ',') { pos++; continue; }
            break;
        }
        if (grouped)
        {
            if (pos >= tokens.Count || tokens[pos].Kind != ')') { problem = "missing ')'"; return false; }
            pos++;
        }
        if (pos != tokens.Count) { problem = $"unexpected '{tokens[pos].Text}' after the list"; return false; }
        result = new StandbyNames(method, count, names);
        return true;
    }

    /// <summary>
    /// The foreign part of this value as its author meant it: the other standbys and how many of them must confirm.
    /// When navette's names are in the value too, the count navette wrote was raised by them (see <see cref="Combine"/>):
    /// <c>count − navette names</c>, at least 1 and at most the foreign names.
    /// </summary>
    public (SyncMethod Method, int Count, IReadOnlyList<string> Names) ForeignPart()
    {
        var foreign = ForeignNames;
        if (foreign.Count == 0) return (SyncMethod.Any, 0, foreign);
        var k = NavetteNames.Count == 0 ? Count : Count - NavetteNames.Count;
        return (Method, Math.Clamp(k, 1, foreign.Count), foreign);
    }

    /// <summary>
    /// The value that keeps every name navette does not own (with its own requirement) and lists exactly
    /// <paramref name="navette"/>, <paramref name="quorum"/> of which must confirm (clipped to how many there are).
    /// PostgreSQL has a single group, so with foreign names present the count is the smallest that keeps both
    /// requirements: <c>max(foreign + quorum, navette + k)</c> where k is the foreign requirement — any that many of the
    /// listed standbys include at least <c>quorum</c> of navette's and at least k of the others. The foreign method
    /// (FIRST/ANY) is kept. <paramref name="note"/> says when that is stricter than each requirement alone.
    /// Returns this very value when navette has nothing to list and listed nothing.
    /// </summary>
    public StandbyNames Combine(IReadOnlyList<string> navette, int quorum, out string? note)
    {
        note = null;
        if (navette.Count == 0 && NavetteNames.Count == 0) return this;
        if (Names.Contains("*"))
            throw new NavetteException("synchronous_standby_names lists '*', which matches every standby including navette's asynchronous subscriptions; "
                                       + "navette cannot tell which standbys it must wait for: replace '*' with the standbys' names");
        var (method, k, foreign) = ForeignPart();
        if (navette.Count == 0)
        {
            if (NavetteNames.Count == 0) return this;
            return foreign.Count == 0 ? None : new StandbyNames(method, k, foreign);
        }
        var q = Math.Clamp(quorum, 1, navette.Count);
        if (foreign.Count == 0)
            return new StandbyNames(SyncMethod.Any, q, navette);
        var m = Math.Max(foreign.Count + q, navette.Count + k);
        if (!(k == foreign.Count && q == navette.Count))
            note = $"PostgreSQL has a single list, so keeping both '{k} of {string.Join(", ", foreign)}' and '{q} of navette's {navette.Count}' "
                   + $"makes {m} of the {foreign.Count + navette.Count} standbys confirm each commit, more than either needs alone";
        return new StandbyNames(method, m, [.. foreign, .. navette]);
    }

    public bool SameAs(StandbyNames other) => Format() == other.Format();
}
