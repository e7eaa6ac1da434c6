using Navette.Processes;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>One sample of a Prometheus text exposition.</summary>
internal sealed record MetricSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// <c>navette run --http 127.0.0.1:PORT</c> as a real process, and an HTTP client for its endpoint.
/// </summary>
internal sealed partial class MonitoredDaemon : IAsyncDisposable
{
    private readonly HttpClient _http;

    public NavetteProcess Process { get; }
    public int Port { get; }
    public Uri BaseUri { get; }

    private MonitoredDaemon(NavetteProcess process, int port, string? token)
    {
        Process = process;
        Port = port;
        BaseUri = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/");
        _http = new HttpClient { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null) _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    /// <summary>Starts the daemon on a free loopback port and waits until its endpoint listens.</summary>
    public static async Task<MonitoredDaemon> StartAsync(ITestOutputHelper output, string configPath, string? token = null, params string[] extraArgs)
    {
        var port = PgProcesses.FindFreePort();
        string[] args = ["--http", $"127.0.0.1:{port}", .. token is null ? Array.Empty<string>() : ["--http-token", token], .. extraArgs];
        var process = NavetteProcess.StartDaemon(output, configPath, "daemon", args);
        var daemon = new MonitoredDaemon(process, port, token);
        if (!await process.WaitForOutputAsync("monitoring endpoint on", TimeSpan.FromSeconds(60)))
            throw new InvalidOperationException($"the daemon exited before listening:\n{process.RecentOutput()}");
        return daemon;
    }

    public Task<HttpResponseMessage> GetAsync(string path) => _http.GetAsync(path);

    public async Task<(int Status, string Body)> GetTextAsync(string path)
    {
        using var response = await _http.GetAsync(path);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task<List<MetricSample>> MetricsAsync()
    {
        var (status, body) = await GetTextAsync("metrics");
        if (status != 200) throw new InvalidOperationException($"/metrics answered {status}: {body}");
        return Parse(body);
    }

    /// <summary>Parses the text exposition format, checking that every sample belongs to a family declared by # TYPE.</summary>
    public static List<MetricSample> Parse(string text)
    {
        var samples = new List<MetricSample>();
        var families = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                families[parts[2]] = parts[3];
                continue;
            }
            var m = SampleLine().Match(line);
            if (!m.Success) throw new FormatException($"not a sample line: {line}");
            var name = m.Groups["name"].Value;
            var family = families.Keys.Where(f => name == f || name.StartsWith(f + "_", StringComparison.Ordinal)).OrderByDescending(f => f.Length).FirstOrDefault()
                         ?? throw new FormatException($"sample {name} has no # TYPE line");
            if (families[family] == "counter" && !name.EndsWith("_total", StringComparison.Ordinal))
                throw new FormatException($"counter {name} does not end in _total");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match l in LabelPair().Matches(m.Groups["labels"].Value))
                labels[l.Groups[1].Value] = l.Groups[2].Value.Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);
            var value = m.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new MetricSample(name, labels, value));
        }
        return samples;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)""")]
    private static partial Regex LabelPair();

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (!Process.HasExited)
        {
            Process.Terminate();
            try { await Process.WaitForExitAsync(TimeSpan.FromSeconds(20)); } catch (TimeoutException) { }
        }
        await Process.DisposeAsync();
    }
}

internal static class MetricQueries
{
    /// <summary>The value of the one sample named <paramref name="name"/> whose labels include those given (null when absent).</summary>
    public static double? Value(this IEnumerable<MetricSample> samples, string name, params (string Label, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value))
            .Select(s => (double?)s.Value).SingleOrDefault();
}
