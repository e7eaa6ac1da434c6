using System.Globalization;
using System.Text;

namespace Navette.Monitoring;

/// <summary>
/// Writes the Prometheus text exposition format (version 0.0.4): one <c># HELP</c> and <c># TYPE</c> per family,
/// then its samples, label values escaped.
/// </summary>
internal sealed class PrometheusWriter
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly StringBuilder _text = new();

    public void Family(string name, string type, string help)
    {
        _text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        _text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    public void Sample(string name, IEnumerable<(string Name, string Value)> labels, double value)
    {
        _text.Append(name);
        var first = true;
        foreach (var (label, v) in labels)
        {
            _text.Append(first ? '{' : ',').Append(label).Append("=\"").Append(Escape(v)).Append('"');
            first = false;
        }
        if (!first) _text.Append('}');
        _text.Append(' ').Append(Format(value)).Append('\n');
    }

    /// <summary>A histogram's <c>_bucket</c> (cumulative, ending with <c>+Inf</c>), <c>_sum</c> and <c>_count</c> samples.</summary>
    public void Histogram(string name, IReadOnlyList<(string Name, string Value)> labels, HistogramSnapshot h)
    {
        for (var i = 0; i < h.Bounds.Count; i++)
            Sample(name + "_bucket", [.. labels, ("le", Format(h.Bounds[i]))], h.Cumulative[i]);
        Sample(name + "_bucket", [.. labels, ("le", "+Inf")], h.Count);
        Sample(name + "_sum", labels, h.Sum);
        Sample(name + "_count", labels, h.Count);
    }

    public override string ToString() => _text.ToString();

    private static string Escape(string v) =>
        v.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    internal static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN" : v.ToString("R", CultureInfo.InvariantCulture);
}
