using Navette.Config;
using Xunit;

namespace Navette.Tests.Config;

/// <summary>The monitoring section and the per-subscription lag_threshold and wal_retention keys.</summary>
public class MonitoringConfigTests
{
    private const string File = "test.yaml";

    private const string Head = """
        nodes:
          paris: { conninfo: "host=127.0.0.1 dbname=shop" }
          lyon: { conninfo: "host=127.0.0.2 dbname=shop" }
        sets:
          shop: { tables: [public.orders] }

        """;

    private static NavetteConfig Parse(string yaml) => ConfigLoader.Parse(Head + yaml, File);

    private static List<string> Errors(string yaml) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Head + yaml, File)).Errors.Select(e => e.ToString()).ToList();

    [Fact]
    public void Defaults_apply_without_a_monitoring_section()
    {
        var c = Parse("subscriptions:\n  a: { from: paris, to: lyon, sets: [shop] }\n");
        Assert.Null(c.Monitoring.Http);
        Assert.Null(c.Monitoring.HttpToken);
        Assert.Equal(TimeSpan.FromSeconds(60), c.Subscriptions["a"].Limits.LagThreshold);
        Assert.Equal(1L << 30, c.Subscriptions["a"].Limits.WalRetention.WarnBytes);
        Assert.Null(c.Subscriptions["a"].Limits.WalRetention.LimitBytes);
    }

    [Fact]
    public void Subscriptions_take_the_section_defaults_and_override_them()
    {
        var c = Parse("""
            monitoring:
              http: 127.0.0.1:9540
              http_token: "0123456789abcdef-token"
              lag_threshold: 2m
              wal_retention: { warn: 512MB, limit: 4GB }
            subscriptions:
              a: { from: paris, to: lyon, sets: [shop] }
              b:
                from: lyon
                to: paris
                sets: [shop]
                lag_threshold: 1500ms
                wal_retention: { limit: 1.5GB }
            """);
        Assert.Equal("127.0.0.1:9540", c.Monitoring.Http);
        Assert.Equal("0123456789abcdef-token", c.Monitoring.HttpToken);
        Assert.DoesNotContain("0123456789abcdef-token", c.Monitoring.ToString());
        Assert.Equal(new SubscriptionLimits(TimeSpan.FromMinutes(2), new WalRetention(512L << 20, 4L << 30)), c.Subscriptions["a"].Limits);
        Assert.Equal(new SubscriptionLimits(TimeSpan.FromMilliseconds(1500), new WalRetention(512L << 20, 3L << 29)), c.Subscriptions["b"].Limits);
    }

    [Fact]
    public void Every_mistake_is_reported_with_its_line()
    {
        var errors = Errors("""
            monitoring:
              http: 127.0.0.1
              http_token: short
              lag_threshold: soon
              wal_retention: { warn: 10GB, limit: 1GB }
              colour: blue
            subscriptions:
              a: { from: paris, to: lyon, sets: [shop], wal_retention: { warn: 1XB, max: 2GB } }
              b: { from: lyon, to: paris, sets: [shop], wal_retention: 5GB, lag_threshold: -3s }
            """);
        Assert.Equal(
        [
            "test.yaml:7: monitoring: 'http' must be an address and port such as 127.0.0.1:9540, not '127.0.0.1': expected HOST:PORT",
            "test.yaml:8: monitoring: 'http_token' must be a string of at least 16 characters",
            "test.yaml:9: monitoring: 'lag_threshold' must be a duration such as 30s, 5m or 1h (units ms, s, m, h, d; a plain number is seconds), not 'soon'",
            "test.yaml:10: monitoring: wal_retention: 'limit' (1GB) must be larger than 'warn' (10GB): the warning is what gives time to act before the slot is dropped",
            "test.yaml:11: unknown key 'colour' in monitoring; allowed: http, http_token, lag_threshold, wal_retention",
            "test.yaml:13: unknown key 'max' in subscription 'a': wal_retention; allowed: warn, limit",
            "test.yaml:13: subscription 'a': wal_retention: 'warn' must be a size such as 512MB, 1GB or 10GB (units B, kB, MB, GB, TB; 1kB = 1024 bytes), not '1XB'",
            "test.yaml:14: subscription 'b': 'lag_threshold' must be a duration such as 30s, 5m or 1h (units ms, s, m, h, d; a plain number is seconds), not '-3s'",
            "test.yaml:14: subscription 'b': 'wal_retention' must be a mapping such as { warn: 1GB, limit: 10GB }",
        ], errors);
    }

    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("512kB", 512L << 10)]
    [InlineData("10 MB", 10L << 20)]
    [InlineData("1gb", 1L << 30)]
    [InlineData("0.5GB", 1L << 29)]
    [InlineData("2TB", 2L << 40)]
    public void Sizes_take_units_of_1024(string text, long bytes)
    {
        Assert.True(ConfigUnits.TryParseSize(text, out var parsed));
        Assert.Equal(bytes, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("MB")]
    [InlineData("-1MB")]
    [InlineData("0")]
    [InlineData("1e3")]
    [InlineData("ten MB")]
    public void Bad_sizes_are_refused(string text) => Assert.False(ConfigUnits.TryParseSize(text, out _));

    [Theory]
    [InlineData("30", 30.0)]
    [InlineData("250ms", 0.25)]
    [InlineData("5m", 300.0)]
    [InlineData("2min", 120.0)]
    [InlineData("1h", 3600.0)]
    public void Durations_take_units(string text, double seconds)
    {
        Assert.True(ConfigUnits.TryParseDuration(text, out var d));
        Assert.Equal(seconds, d.TotalSeconds, 6);
    }

    [Theory]
    [InlineData("127.0.0.1:9540", "127.0.0.1:9540", true)]
    [InlineData("localhost:80", "127.0.0.1:80", true)]
    [InlineData("[::1]:9540", "[::1]:9540", true)]
    [InlineData("0.0.0.0:9540", "0.0.0.0:9540", false)]
    [InlineData("[::]:9540", "[::]:9540", false)]
    public void Http_endpoints_parse_and_know_loopback(string text, string shown, bool loopback)
    {
        Assert.True(HttpEndpoint.TryParse(text, out var e, out _));
        Assert.Equal(shown, e.ToString());
        Assert.Equal(loopback, e.IsLoopback);
    }

    [Theory]
    [InlineData("9540")]
    [InlineData("host.example.com:9540")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:99999")]
    public void Bad_http_endpoints_are_refused(string text) => Assert.False(HttpEndpoint.TryParse(text, out _, out _));
}
