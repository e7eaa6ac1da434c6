using System.Globalization;
using System.Text;
using Npgsql;

namespace Navette.Config;

/// <summary>
/// Converts libpq connection strings (what <c>psql</c> accepts) into Npgsql connection strings,
/// and hides passwords for logging.
/// </summary>
/// <remarks>
/// Two syntaxes are accepted, as in libpq:
/// <list type="bullet">
/// <item><c>host=db1 port=5432 dbname=shop user=app password='it''s \' secret'</c>: keyword=value pairs
/// separated by whitespace; values may be single-quoted; a backslash escapes the next character.</item>
/// <item><c>postgresql://user:password@host1:5432,host2/dbname?sslmode=require</c> (or <c>postgres://</c>):
/// percent-encoded, with any conninfo keyword as a query parameter.</item>
/// </list>
/// Error messages never contain password values.
/// </remarks>
internal static class ConnInfo
{
    /// <summary>What a password is replaced with by <see cref="Redact"/>.</summary>
    public const string RedactedValue = "********";

    private static readonly string[] UriPrefixes = ["postgresql://", "postgres://"];

    private static readonly HashSet<string> SecretKeywords = new(StringComparer.Ordinal) { "password", "sslpassword" };

    private static readonly HashSet<string> SupportedKeywords = new(StringComparer.Ordinal)
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile",
        "sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslnegotiation",
        "application_name", "fallback_application_name", "connect_timeout", "options",
        "target_session_attrs", "keepalives", "keepalives_idle", "client_encoding",
        "krbsrvname", "gssencmode", "channel_binding", "require_auth", "load_balance_hosts",
    };

    /// <summary>libpq keywords that navette recognizes but cannot honour through Npgsql.</summary>
    private static readonly HashSet<string> UnsupportedLibpqKeywords = new(StringComparer.Ordinal)
    {
        "service", "replication", "requirepeer", "sslcrl", "sslcrldir", "sslcompression", "sslsni",
        "sslcertmode", "ssl_min_protocol_version", "ssl_max_protocol_version", "gsslib", "gssdelegation",
        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "min_protocol_version",
        "max_protocol_version", "scram_client_key", "scram_server_key", "oauth_issuer", "oauth_client_id",
        "oauth_client_secret", "oauth_scope",
    };

    private static readonly string[] TargetSessionAttrs =
        ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"];

    /// <summary>
    /// Converts a libpq conninfo (keyword=value or URI) into an Npgsql connection string.
    /// Throws <see cref="ArgumentException"/> (never mentioning a password) when it cannot.
    /// </summary>
    public static string ToNpgsql(string conninfo)
    {
        ArgumentNullException.ThrowIfNull(conninfo);
        return Build(Parse(conninfo)).ConnectionString;
    }

    /// <summary>
    /// Parses a conninfo into its keyword/value pairs, in order (later duplicates win when used),
    /// without checking the keywords.
    /// </summary>
    internal static IReadOnlyList<KeyValuePair<string, string>> Parse(string conninfo)
    {
        ArgumentNullException.ThrowIfNull(conninfo);
        if (UriPrefixLength(conninfo, out var start) is var prefix and > 0)
        {
            return ParseUri(conninfo, start + prefix);
        }

        var tokens = new List<KeyValueToken>();
        TokenizeKeyValue(conninfo, strict: true, tokens);
        return tokens.Select(t => new KeyValuePair<string, string>(t.Key, t.Value)).ToList();
    }

    /// <summary>
    /// Returns the conninfo with the values of <c>password</c> and <c>sslpassword</c> replaced by
    /// <c>********</c>, in either syntax. Never throws: malformed input is redacted on a best-effort basis.
    /// </summary>
    public static string Redact(string conninfo)
    {
        ArgumentNullException.ThrowIfNull(conninfo);
        var spans = SecretSpans(conninfo);
        if (spans.Count == 0)
        {
            return conninfo;
        }

        var sb = new StringBuilder(conninfo.Length);
        var pos = 0;
        foreach (var (s, e) in spans)
        {
            sb.Append(conninfo, pos, s - pos).Append(RedactedValue);
            pos = e;
        }

        sb.Append(conninfo, pos, conninfo.Length - pos);
        return sb.ToString();
    }

    /// <summary>Quotes a keyword value for a libpq conninfo when needed (spaces, quotes, backslashes or empty).</summary>
    public static string Quote(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length > 0 && !value.Any(c => IsSpace(c) || c is '\'' or '\\'))
        {
            return value;
        }

        return "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
    }

    /// <summary>Renders keyword/value pairs as a keyword=value conninfo.</summary>
    public static string Format(IEnumerable<KeyValuePair<string, string>> pairs) =>
        string.Join(' ', pairs.Select(p => p.Key + "=" + Quote(p.Value)));

    /// <summary>
    /// The conninfo (either syntax) as keyword=value pairs, with every keyword of <paramref name="changes"/> removed
    /// and, where its value is not null, set to that value.
    /// </summary>
    public static string With(string conninfo, IReadOnlyList<KeyValuePair<string, string?>> changes)
    {
        // A changed keyword keeps the place of its first occurrence; new ones go last.
        var pending = changes.ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
        var result = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in Parse(conninfo))
        {
            if (!pending.TryGetValue(key, out var changed))
                result.Add(new(key, value));
            else if (changed is not null && !result.Any(p => p.Key == key))
                result.Add(new(key, changed));
        }

        result.AddRange(changes.Where(c => c.Value is not null && !result.Any(p => p.Key == c.Key)).Select(c => new KeyValuePair<string, string>(c.Key, c.Value!)));
        return Format(result);
    }

    /// <summary>
    /// Splits the password out of a conninfo, for tools that would otherwise show it in their command line:
    /// it goes to them through <c>PGPASSWORD</c> instead. Null when the conninfo has none.
    /// </summary>
    public static (string ConnInfo, string? Password) WithoutPassword(string conninfo)
    {
        var password = Parse(conninfo).LastOrDefault(p => p.Key == "password").Value;
        return (With(conninfo, [new("password", null)]), string.IsNullOrEmpty(password) ? null : password);
    }

    /// <summary>
    /// Removes any secret found in <paramref name="conninfo"/> from <paramref name="text"/> (both the raw and the
    /// decoded form). A safety net for messages built from a conninfo that failed to parse.
    /// </summary>
    internal static string ScrubSecrets(string text, string conninfo)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(conninfo);
        var secrets = new List<string>();
        foreach (var (s, e) in SecretSpans(conninfo))
        {
            var raw = conninfo[s..e];
            secrets.Add(raw);
            if (raw.Length >= 2 && raw[0] == '\'' && raw[^1] == '\'')
            {
                secrets.Add(raw[1..^1]);
            }

            if (TryPercentDecode(raw, out var decoded))
            {
                secrets.Add(decoded);
            }

            secrets.Add(raw.Replace("\\", string.Empty, StringComparison.Ordinal));
        }

        foreach (var secret in secrets.Where(s => s.Length > 0).Distinct().OrderByDescending(s => s.Length))
        {
            text = text.Replace(secret, RedactedValue, StringComparison.Ordinal);
        }

        return text;
    }

    // ---------------------------------------------------------------- conversion

    private static NpgsqlConnectionStringBuilder Build(IReadOnlyList<KeyValuePair<string, string>> pairs)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in pairs)
        {
            if (!SupportedKeywords.Contains(key))
            {
                if (UnsupportedLibpqKeywords.Contains(key))
                {
                    throw new ArgumentException($"conninfo keyword '{key}' is not supported by navette");
                }

                throw new ArgumentException($"unknown conninfo keyword '{key}'");
            }

            values[key] = value;
        }

        // As in libpq, an empty value means "not set".
        string? Get(string key) => values.TryGetValue(key, out var v) && v.Length > 0 ? v : null;

        var b = new NpgsqlConnectionStringBuilder();
        SetHostsAndPorts(b, Get("hostaddr") ?? Get("host"), Get("port"));

        if (Get("dbname") is { } dbname)
        {
            b.Database = dbname;
        }

        if (Get("user") is { } user)
        {
            b.Username = user;
        }

        if (Get("password") is { } password)
        {
            b.Password = password;
        }

        if (Get("passfile") is { } passfile)
        {
            b.Passfile = passfile;
        }

        if (Get("sslmode") is { } sslmode)
        {
            b.SslMode = sslmode switch
            {
                "disable" => SslMode.Disable,
                "allow" => SslMode.Allow,
                "prefer" => SslMode.Prefer,
                "require" => SslMode.Require,
                "verify-ca" => SslMode.VerifyCA,
                "verify-full" => SslMode.VerifyFull,
                _ => throw Invalid("sslmode", sslmode, "disable, allow, prefer, require, verify-ca, verify-full"),
            };
        }

        if (Get("sslrootcert") is { } sslrootcert)
        {
            b.RootCertificate = sslrootcert;
        }

        if (Get("sslcert") is { } sslcert)
        {
            b.SslCertificate = sslcert;
        }

        if (Get("sslkey") is { } sslkey)
        {
            b.SslKey = sslkey;
        }

        if (Get("sslpassword") is { } sslpassword)
        {
            b.SslPassword = sslpassword;
        }

        if (Get("sslnegotiation") is { } sslnegotiation)
        {
            b.SslNegotiation = sslnegotiation switch
            {
                "postgres" => SslNegotiation.Postgres,
                "direct" => SslNegotiation.Direct,
                _ => throw Invalid("sslnegotiation", sslnegotiation, "postgres, direct"),
            };
        }

        if ((Get("application_name") ?? Get("fallback_application_name")) is { } applicationName)
        {
            b.ApplicationName = applicationName;
        }

        if (Get("connect_timeout") is { } connectTimeout)
        {
            var seconds = ParseInt("connect_timeout", connectTimeout, int.MinValue, 1024, "a number of seconds, at most 1024");
            b.Timeout = Math.Max(seconds, 0); // libpq and Npgsql: 0 waits forever
        }

        if (Get("options") is { } options)
        {
            b.Options = options;
        }

        if (Get("target_session_attrs") is { } targetSessionAttrs)
        {
            if (!TargetSessionAttrs.Contains(targetSessionAttrs, StringComparer.Ordinal))
            {
                throw Invalid("target_session_attrs", targetSessionAttrs, string.Join(", ", TargetSessionAttrs));
            }

            b.TargetSessionAttributes = targetSessionAttrs;
        }

        if (Get("keepalives") is { } keepalives)
        {
            b.TcpKeepAlive = ParseInt("keepalives", keepalives, 0, 1, "0 or 1") == 1;
        }

        if (Get("keepalives_idle") is { } keepalivesIdle)
        {
            b.KeepAlive = ParseInt("keepalives_idle", keepalivesIdle, 0, int.MaxValue, "a number of seconds");
        }

        if (Get("client_encoding") is { } clientEncoding)
        {
            b.ClientEncoding = clientEncoding;
        }

        if (Get("krbsrvname") is { } krbsrvname)
        {
            b.KerberosServiceName = krbsrvname;
        }

        if (Get("gssencmode") is { } gssencmode)
        {
            b.GssEncryptionMode = gssencmode switch
            {
                "disable" => GssEncryptionMode.Disable,
                "prefer" => GssEncryptionMode.Prefer,
                "require" => GssEncryptionMode.Require,
                _ => throw Invalid("gssencmode", gssencmode, "disable, prefer, require"),
            };
        }

        if (Get("channel_binding") is { } channelBinding)
        {
            b.ChannelBinding = channelBinding switch
            {
                "disable" => ChannelBinding.Disable,
                "prefer" => ChannelBinding.Prefer,
                "require" => ChannelBinding.Require,
                _ => throw Invalid("channel_binding", channelBinding, "disable, prefer, require"),
            };
        }

        if (Get("require_auth") is { } requireAuth)
        {
            try
            {
                b.RequireAuth = requireAuth;
            }
            catch (ArgumentException)
            {
                throw new ArgumentException($"invalid require_auth '{requireAuth}'");
            }
        }

        if (Get("load_balance_hosts") is { } loadBalanceHosts)
        {
            b.LoadBalanceHosts = loadBalanceHosts switch
            {
                "disable" => false,
                "random" => true,
                _ => throw Invalid("load_balance_hosts", loadBalanceHosts, "disable, random"),
            };
        }

        return b;
    }

    private static void SetHostsAndPorts(NpgsqlConnectionStringBuilder b, string? hostText, string? portText)
    {
        var hosts = hostText?.Split(',') ?? [];
        var ports = portText?.Split(',') ?? [];
        foreach (var port in ports)
        {
            if (port.Length > 0)
            {
                ParseInt("port", port, 1, 65535, "a number from 1 to 65535");
            }
        }

        if (hosts.Length <= 1 && ports.Length <= 1)
        {
            if (hostText is not null)
            {
                b.Host = hostText;
            }

            if (ports.Length == 1 && ports[0].Length > 0)
            {
                b.Port = int.Parse(ports[0], NumberStyles.Integer, CultureInfo.InvariantCulture);
            }

            return;
        }

        // Several hosts and/or ports: Npgsql takes them all in Host as host:port pairs.
        if (hosts.Length == 0)
        {
            hosts = ["localhost"];
        }

        if (ports.Length > 1 && ports.Length != hosts.Length)
        {
            throw new ArgumentException($"could not match {ports.Length} port numbers to {hosts.Length} hosts");
        }

        var entries = new List<string>(hosts.Length);
        for (var k = 0; k < hosts.Length; k++)
        {
            var host = hosts[k];
            if (host.Length == 0)
            {
                throw new ArgumentException("empty host name in a list of hosts");
            }

            var port = ports.Length == 0 ? string.Empty : ports.Length == 1 ? ports[0] : ports[k];
            if (port.Length == 0)
            {
                entries.Add(host);
            }
            else
            {
                var bracketed = host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]" : host;
                entries.Add(bracketed + ":" + port);
            }
        }

        b.Host = string.Join(',', entries);
    }

    private static int ParseInt(string key, string value, int min, int max, string expected)
    {
        if (!int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            || n < min || n > max)
        {
            throw Invalid(key, value, expected);
        }

        return n;
    }

    private static ArgumentException Invalid(string key, string value, string expected) =>
        new($"invalid {key} '{value}'; expected {expected}");

    // ---------------------------------------------------------------- keyword=value syntax

    private readonly record struct KeyValueToken(string Key, int ValueStart, int ValueEnd, string Value);

    private static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\r' or '\f' or '\v';

    /// <summary>
    /// Splits keyword=value text as libpq does. In strict mode malformed text throws; otherwise the
    /// scanner skips what it cannot understand (used for redaction, which must never fail).
    /// </summary>
    private static void TokenizeKeyValue(string s, bool strict, List<KeyValueToken> tokens)
    {
        var i = 0;
        var n = s.Length;
        while (true)
        {
            while (i < n && IsSpace(s[i]))
            {
                i++;
            }

            if (i >= n)
            {
                return;
            }

            var keyStart = i;
            while (i < n && !IsSpace(s[i]) && s[i] != '=')
            {
                i++;
            }

            var key = s[keyStart..i];
            while (i < n && IsSpace(s[i]))
            {
                i++;
            }

            if (i >= n || s[i] != '=')
            {
                if (strict)
                {
                    // Only name words we know: a stray word may be a fragment of a badly quoted password.
                    throw new ArgumentException(IsKnownKeyword(key)
                        ? $"missing '=' after '{key}' in conninfo"
                        : $"missing '=' after the word at position {keyStart + 1} in conninfo (expected keyword=value)");
                }

                continue;
            }

            if (key.Length == 0 && strict)
            {
                throw new ArgumentException($"missing keyword before '=' at position {i + 1} in conninfo");
            }

            i++;
            while (i < n && IsSpace(s[i]))
            {
                i++;
            }

            var valueStart = i;
            var sb = new StringBuilder();
            if (i < n && s[i] == '\'')
            {
                i++;
                var closed = false;
                while (i < n)
                {
                    if (s[i] == '\\')
                    {
                        i++;
                        if (i < n)
                        {
                            sb.Append(s[i]);
                            i++;
                        }

                        continue;
                    }

                    if (s[i] == '\'')
                    {
                        i++;
                        closed = true;
                        break;
                    }

                    sb.Append(s[i]);
                    i++;
                }

                if (!closed && strict)
                {
                    throw new ArgumentException(IsKnownKeyword(key)
                        ? $"unterminated quoted value for '{key}' in conninfo"
                        : "unterminated quoted value in conninfo");
                }
            }
            else
            {
                while (i < n && !IsSpace(s[i]))
                {
                    if (s[i] == '\\')
                    {
                        i++;
                        if (i < n)
                        {
                            sb.Append(s[i]);
                            i++;
                        }

                        continue;
                    }

                    sb.Append(s[i]);
                    i++;
                }
            }

            tokens.Add(new KeyValueToken(key, valueStart, i, sb.ToString()));
        }
    }

    private static bool IsKnownKeyword(string key) => SupportedKeywords.Contains(key) || UnsupportedLibpqKeywords.Contains(key);

    // ---------------------------------------------------------------- URI syntax

    /// <summary>Length of the URI scheme prefix if <paramref name="s"/> is a URI (after leading blanks), else 0.</summary>
    private static int UriPrefixLength(string s, out int start)
    {
        start = 0;
        while (start < s.Length && IsSpace(s[start]))
        {
            start++;
        }

        foreach (var prefix in UriPrefixes)
        {
            if (string.CompareOrdinal(s, start, prefix, 0, prefix.Length) == 0)
            {
                return prefix.Length;
            }
        }

        return 0;
    }

    private static List<KeyValuePair<string, string>> ParseUri(string s, int start)
    {
        var result = new List<KeyValuePair<string, string>>();
        var rest = s[start..].TrimEnd();
        var i = 0;

        var at = FindUserInfoEnd(rest);
        if (at >= 0)
        {
            var userInfo = rest[..at];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            var user = colon < 0 ? userInfo : userInfo[..colon];
            if (user.Length > 0)
            {
                result.Add(new("user", Decode(user, "user name")));
            }

            if (colon >= 0 && colon + 1 < userInfo.Length)
            {
                result.Add(new("password", Decode(userInfo[(colon + 1)..], "password")));
            }

            i = at + 1;
        }

        var hosts = new List<string>();
        var ports = new List<string>();
        while (true)
        {
            string host;
            if (i < rest.Length && rest[i] == '[')
            {
                var close = rest.IndexOf(']', i);
                if (close < 0)
                {
                    throw new ArgumentException("unterminated IPv6 host address ('[' without ']') in conninfo URI");
                }

                host = rest[(i + 1)..close];
                if (host.Length == 0)
                {
                    throw new ArgumentException("empty IPv6 host address '[]' in conninfo URI");
                }

                i = close + 1;
                if (i < rest.Length && rest[i] is not (':' or '/' or '?' or ','))
                {
                    throw new ArgumentException($"unexpected character '{rest[i]}' after IPv6 host address in conninfo URI");
                }
            }
            else
            {
                var hostStart = i;
                while (i < rest.Length && rest[i] is not (':' or '/' or '?' or ','))
                {
                    i++;
                }

                host = Decode(rest[hostStart..i], "host");
            }

            var port = string.Empty;
            if (i < rest.Length && rest[i] == ':')
            {
                i++;
                var portStart = i;
                while (i < rest.Length && rest[i] is not ('/' or '?' or ','))
                {
                    i++;
                }

                port = Decode(rest[portStart..i], "port");
            }

            hosts.Add(host);
            ports.Add(port);
            if (i < rest.Length && rest[i] == ',')
            {
                i++;
                continue;
            }

            break;
        }

        if (hosts.Any(h => h.Length > 0))
        {
            result.Add(new("host", string.Join(',', hosts)));
        }

        if (ports.Any(p => p.Length > 0))
        {
            result.Add(new("port", string.Join(',', ports)));
        }

        if (i < rest.Length && rest[i] == '/')
        {
            i++;
            var dbStart = i;
            while (i < rest.Length && rest[i] != '?')
            {
                i++;
            }

            var dbname = Decode(rest[dbStart..i], "database name");
            if (dbname.Length > 0)
            {
                result.Add(new("dbname", dbname));
            }
        }

        if (i < rest.Length && rest[i] == '?')
        {
            foreach (var parameter in rest[(i + 1)..].Split('&'))
            {
                if (parameter.Length == 0)
                {
                    continue;
                }

                var eq = parameter.IndexOf('=', StringComparison.Ordinal);
                if (eq < 0 || parameter.IndexOf('=', eq + 1) >= 0)
                {
                    // Do not quote the parameter: with a badly encoded password it could be part of it.
                    throw new ArgumentException("malformed query parameter in conninfo URI (expected keyword=value, '&' between parameters)");
                }

                var key = Decode(parameter[..eq], "query parameter name");
                var value = Decode(parameter[(eq + 1)..], "query parameter value");
                if (key == "ssl" && value == "true")
                {
                    // libpq accepts this JDBC spelling.
                    key = "sslmode";
                    value = "require";
                }

                result.Add(new(key, value));
            }
        }

        return result;
    }

    /// <summary>Index of the '@' ending the user info, as libpq finds it (scanning stops at '/'), or -1.</summary>
    private static int FindUserInfoEnd(string rest)
    {
        for (var j = 0; j < rest.Length && rest[j] != '/'; j++)
        {
            if (rest[j] == '@')
            {
                return j;
            }
        }

        return -1;
    }

    private static string Decode(string s, string what)
    {
        if (!TryPercentDecode(s, out var decoded))
        {
            throw new ArgumentException($"invalid percent-encoding in the {what} of the conninfo URI");
        }

        return decoded;
    }

    private static bool TryPercentDecode(string s, out string decoded)
    {
        decoded = s;
        if (!s.Contains('%', StringComparison.Ordinal))
        {
            return true;
        }

        var bytes = new List<byte>(s.Length);
        var literalStart = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] != '%')
            {
                continue;
            }

            bytes.AddRange(Encoding.UTF8.GetBytes(s[literalStart..i]));
            if (i + 2 >= s.Length
                || !byte.TryParse(s.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b)
                || b == 0)
            {
                return false;
            }

            bytes.Add(b);
            i += 2;
            literalStart = i + 1;
        }

        bytes.AddRange(Encoding.UTF8.GetBytes(s[literalStart..]));

        try
        {
            decoded = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes.ToArray());
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    // ---------------------------------------------------------------- redaction

    /// <summary>Spans (start, end) of secret values in the text, in order, found without ever throwing.</summary>
    private static List<(int Start, int End)> SecretSpans(string conninfo)
    {
        var spans = new List<(int Start, int End)>();
        if (UriPrefixLength(conninfo, out var start) is var prefix and > 0)
        {
            var authorityStart = start + prefix;
            var rest = conninfo[authorityStart..];
            var at = FindUserInfoEnd(rest);
            var queryFrom = 0;
            if (at >= 0)
            {
                var colon = rest.IndexOf(':', 0, at);
                if (colon >= 0 && colon + 1 < at)
                {
                    spans.Add((authorityStart + colon + 1, authorityStart + at));
                }

                queryFrom = at + 1;
            }

            var q = rest.IndexOf('?', queryFrom);
            if (q >= 0)
            {
                var pos = q + 1;
                while (pos <= rest.Length)
                {
                    var amp = rest.IndexOf('&', pos);
                    var end = amp < 0 ? rest.Length : amp;
                    var eq = rest.IndexOf('=', pos, end - pos);
                    if (eq >= 0 && eq + 1 < end)
                    {
                        var rawKey = rest[pos..eq];
                        var key = TryPercentDecode(rawKey, out var k) ? k : rawKey;
                        if (SecretKeywords.Contains(key))
                        {
                            spans.Add((authorityStart + eq + 1, authorityStart + end));
                        }
                    }

                    if (amp < 0)
                    {
                        break;
                    }

                    pos = amp + 1;
                }
            }

            return spans;
        }

        var tokens = new List<KeyValueToken>();
        TokenizeKeyValue(conninfo, strict: false, tokens);
        foreach (var t in tokens)
        {
            if (SecretKeywords.Contains(t.Key) && t.ValueEnd > t.ValueStart)
            {
                spans.Add((t.ValueStart, t.ValueEnd));
            }
        }

        return spans;
    }
}
