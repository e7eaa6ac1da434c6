using System.Globalization;

namespace Navette.Config;

/// <summary>Sizes (<c>512kB</c>, <c>10MB</c>, <c>1GB</c>) and durations (<c>500ms</c>, <c>30s</c>, <c>5m</c>) as written in the file.</summary>
internal static class ConfigUnits
{
    /// <summary>Units of 1024, as PostgreSQL's own settings (case ignored); a plain number is bytes.</summary>
    private static readonly (string Suffix, double Factor)[] SizeUnits =
        [("TB", 1L << 40), ("GB", 1L << 30), ("MB", 1L << 20), ("KB", 1L << 10), ("B", 1)];

    private static readonly (string Suffix, double Factor)[] DurationUnits =
        [("ms", 0.001), ("s", 1), ("min", 60), ("m", 60), ("h", 3600), ("d", 86400)];

    public const string SizeHint = "a size such as 512MB, 1GB or 10GB (units B, kB, MB, GB, TB; 1kB = 1024 bytes)";
    public const string DurationHint = "a duration such as 30s, 5m or 1h (units ms, s, m, h, d; a plain number is seconds)";

    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        if (!TryParse(text, SizeUnits, StringComparison.OrdinalIgnoreCase, out var value) || value < 1 || value > long.MaxValue / 2) return false;
        bytes = (long)Math.Round(value);
        return true;
    }

    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (!TryParse(text, DurationUnits, StringComparison.Ordinal, out var seconds) || seconds <= 0 || seconds > TimeSpan.FromDays(365).TotalSeconds) return false;
        duration = TimeSpan.FromSeconds(seconds);
        return true;
    }

    /// <summary>A non-negative decimal number followed by one of the units (or none: factor 1).</summary>
    private static bool TryParse(string text, (string Suffix, double Factor)[] units, StringComparison comparison, out double value)
    {
        value = 0;
        var t = text.Trim();
        double factor = 1;
        foreach (var (suffix, f) in units)
        {
            if (t.EndsWith(suffix, comparison))
            {
                t = t[..^suffix.Length].TrimEnd();
                factor = f;
                break;
            }
        }
        if (t.Length == 0 || !t.All(c => char.IsAsciiDigit(c) || c == '.')
            || !double.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
            return false;
        value = n * factor;
        return true;
    }

    /// <summary>The way sizes are shown back to the operator (the largest unit that divides evenly, else one decimal).</summary>
    public static string FormatSize(long bytes)
    {
        foreach (var (suffix, factor) in SizeUnits)
        {
            var f = (long)factor;
            if (bytes < f) continue;
            var unit = suffix == "KB" ? "kB" : suffix;
            return bytes % f == 0
                ? (bytes / f).ToString(CultureInfo.InvariantCulture) + unit
                : (bytes / factor).ToString("F1", CultureInfo.InvariantCulture) + unit;
        }
        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }
}
