using System.Globalization;
using System.Text.RegularExpressions;

namespace Navette.Config;

/// <summary>
/// A PostgreSQL time setting as written in postgresql.conf (<c>500ms</c>, <c>30s</c>, <c>5min</c>, <c>2h</c>,
/// <c>1d</c>; a bare number is milliseconds), e.g. for <c>recovery_min_apply_delay</c>.
/// </summary>
internal static partial class PgDuration
{
    /// <summary>PostgreSQL stores these settings as an int of milliseconds.</summary>
    private const long MaxMilliseconds = int.MaxValue;

    /// <summary>
    /// Parses <paramref name="text"/>; on success <paramref name="normalized"/> is the same duration without
    /// inner spaces (<c>"5 min"</c> → <c>"5min"</c>) and <paramref name="milliseconds"/> its length.
    /// </summary>
    public static bool TryParse(string text, out string normalized, out long milliseconds, out string problem)
    {
        normalized = string.Empty;
        milliseconds = 0;
        var m = Shape().Match(text.Trim());
        if (!m.Success)
        {
            problem = $"'{text}' is not a duration; write a whole number with a unit: ms, s, min, h or d (e.g. 30s, 5min)";
            return false;
        }

        var unit = m.Groups[2].Value;
        var factor = unit switch
        {
            "" or "ms" => 1L,
            "s" => 1000L,
            "min" => 60_000L,
            "h" => 3_600_000L,
            _ => 86_400_000L,
        };
        if (!long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > MaxMilliseconds / factor)
        {
            problem = $"'{text}' is too long; PostgreSQL accepts at most {MaxMilliseconds} ms (about 24 days)";
            return false;
        }

        normalized = m.Groups[1].Value + unit;
        milliseconds = n * factor;
        problem = string.Empty;
        return true;
    }

    [GeneratedRegex(@"^([0-9]+)\s*(ms|s|min|h|d)?$")]
    private static partial Regex Shape();
}
