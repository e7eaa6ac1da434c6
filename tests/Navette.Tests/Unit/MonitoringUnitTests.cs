using Navette.Monitoring;
using Navette.Monitoring.Http;
using Navette.Tests.Observability;
using Xunit;

namespace Navette.Tests.Unit;

public class MonitoringUnitTests
{
    [Fact]
    public void Exposition_escapes_label_values_and_writes_cumulative_histograms()
    {
        var w = new PrometheusWriter();
        w.Family("navette_test_total", "counter", "A test.\nSecond line.");
        w.Sample("navette_test_total", [("table", "public.\"Odd\\Name\"\n")], 3);
        var h = new Histogram(1, 10);
        foreach (var v in new[] { 0.5, 1, 5, 50 }) h.Observe(v);
        w.Family("navette_test_sizes", "histogram", "Sizes.");
        w.Histogram("navette_test_sizes", [("subscription", "a")], h.Snapshot());
        var text = w.ToString();
        Assert.Contains("# HELP navette_test_total A test.\\nSecond line.\n", text);
        Assert.Contains("navette_test_total{table=\"public.\\\"Odd\\\\Name\\\"\\n\"} 3\n", text);
        var samples = MonitoredDaemon.Parse(text);
        Assert.Equal("public.\"Odd\\Name\"\\n", samples[0].Labels["table"]);
        Assert.Equal(2, samples.Value("navette_test_sizes_bucket", ("le", "1")));
        Assert.Equal(3, samples.Value("navette_test_sizes_bucket", ("le", "10")));
        Assert.Equal(4, samples.Value("navette_test_sizes_bucket", ("le", "+Inf")));
        Assert.Equal(4, samples.Value("navette_test_sizes_count"));
        Assert.Equal(56.5, samples.Value("navette_test_sizes_sum"));
    }

    [Fact]
    public void The_sample_ring_keeps_the_newest_in_order()
    {
        var ring = new SampleRing(3);
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        for (var i = 0; i < 5; i++) ring.Add(new Sample(t0.AddSeconds(i), i, i, i, i, i, "streaming"));
        Assert.Equal(new long?[] { 2, 3, 4 }, ring.Snapshot().Select(s => s.LagBytes));
        Assert.Equal(3, new SampleRing(720).Capacity / 240);
    }

    [Fact]
    public void The_token_gate_matches_only_the_exact_token()
    {
        var gate = new TokenGate("0123456789abcdef-secret");
        Assert.True(gate.Matches("0123456789abcdef-secret"));
        Assert.False(gate.Matches("0123456789abcdef-secreT"));
        Assert.False(gate.Matches("0123456789abcdef-secret "));
        Assert.False(gate.Matches(""));
        Assert.False(gate.Matches(null));
    }

    [Fact]
    public void Conflicts_are_counted_by_type_and_listed_as_events()
    {
        var events = new RecentEvents(capacity: 2);
        var metrics = new SubscriptionMetrics("a", events);
        metrics.Conflicts.Record("update_missing", "public.t id=1");
        metrics.Conflicts.Record("update_missing");
        metrics.Conflicts.Record("insert_exists");
        Assert.Equal(new Dictionary<string, long> { ["insert_exists"] = 1, ["update_missing"] = 2 }, metrics.Conflicts.Snapshot());
        Assert.Equal(["update_missing", "insert_exists"], events.Snapshot().Select(e => e.Message));
    }
}
