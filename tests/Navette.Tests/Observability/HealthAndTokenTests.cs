using Navette.Processes;
using System.Net;
using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>/health following a target going away and coming back; the token that guards the endpoint.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class HealthAndTokenTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";
    private const string Token = "test-token-0123456789-abcdef";

    private async Task<ReplicationHarness> PairAsync(string extra = "")
    {
        var h = await ReplicationHarness.StartAsync(output, "origin", "replica");
        await h.OnAllAsync("CREATE TABLE public.items (id int PRIMARY KEY, payload text NOT NULL)");
        await h["origin"].ExecuteAsync("INSERT INTO items SELECT g, 'seed' FROM generate_series(1, 100) g");
        h.WriteConfig($$"""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [shop] }
            {{extra}}
            """);
        await h.ApplyAsync();
        return h;
    }

    [Fact]
    public async Task Health_is_503_while_the_target_is_stopped_and_200_once_it_is_back()
    {
        await using var h = await PairAsync();
        await using var daemon = await MonitoredDaemon.StartAsync(output, h.ConfigPath);
        var healthy = await Eventually.ValueAsync(() => daemon.GetTextAsync("health"), r => r.Status == 200, TimeSpan.FromSeconds(90), "health 200");
        Assert.StartsWith("ok", healthy.Body);

        await h["replica"].StopAsync();
        var down = await Eventually.ValueAsync(() => daemon.GetTextAsync("health"), r => r.Status == 503, TimeSpan.FromSeconds(60), "health 503");
        output.WriteLine("503 body: " + down.Body);
        Assert.Contains($"subscription {Sub} (origin -> replica)", down.Body);
        Assert.Contains("unreachable", down.Body);

        await h["replica"].StartAsync();
        await Eventually.ValueAsync(() => daemon.GetTextAsync("health"), r => r.Status == 200, TimeSpan.FromSeconds(120), "health 200 again");
        await h["origin"].ExecuteAsync("INSERT INTO items SELECT g, 'after' FROM generate_series(101, 150) g");
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["origin"], h["replica"], "public.items", 150);
    }

    [Fact]
    public async Task A_token_is_checked_on_every_request_and_required_off_loopback()
    {
        await using var h = await PairAsync();

        // Off loopback without a token: refused before anything listens, from the command line and from the file.
        var port = PgProcesses.FindFreePort();
        var refused = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "run", "-c", h.ConfigPath, "--http", $"0.0.0.0:{port}");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("not a loopback address", refused.StdErr);
        Assert.Contains("--http-token", refused.StdErr);
        var shortToken = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "run", "-c", h.ConfigPath, "--http", $"0.0.0.0:{port}", "--http-token", "short");
        Assert.Equal(1, shortToken.ExitCode);
        Assert.Contains("too short", shortToken.StdErr);
        Assert.DoesNotContain("short", shortToken.StdErr.Replace("too short", "", StringComparison.Ordinal));
        var fromFile = Path.Combine(TestClusters.RootDir, $"exposed-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(fromFile, await File.ReadAllTextAsync(h.ConfigPath) + $"monitoring:\n  http: \"[::]:{port}\"\n");
        var refusedFromFile = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "run", "-c", fromFile);
        Assert.Equal(1, refusedFromFile.ExitCode);
        Assert.Contains("not a loopback address", refusedFromFile.StdErr);

        // With a token (here on loopback: a configured token is always enforced), every path needs it.
        await using var daemon = await MonitoredDaemon.StartAsync(output, h.ConfigPath, Token);
        using var anonymous = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = daemon.BaseUri };
        foreach (var path in new[] { "metrics", "health", "api/status", "api/dashboard", "", "assets/dashboard.js" })
        {
            using var none = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
            Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);
            using var wrong = new HttpRequestMessage(HttpMethod.Get, path);
            wrong.Headers.Authorization = new("Bearer", Token[..^1] + "X");
            using var wrongResponse = await anonymous.SendAsync(wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, wrongResponse.StatusCode);
            Assert.DoesNotContain(Token, await wrongResponse.Content.ReadAsStringAsync());
        }
        var metrics = await daemon.MetricsAsync();
        Assert.Equal(1, metrics.Value("navette_up"));

        // A browser: ?token= once, then the cookie (and the token leaves the address).
        using var first = await anonymous.GetAsync($"?token={Uri.EscapeDataString(Token)}");
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Equal("/", first.Headers.Location?.ToString());
        var cookie = first.Headers.GetValues("Set-Cookie").Single();
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        foreach (var path in new[] { "", "api/dashboard", "assets/vendor/uPlot.iife.min.js" })
        {
            using var withCookie = new HttpRequestMessage(HttpMethod.Get, path);
            withCookie.Headers.Add("Cookie", cookie.Split(';')[0]);
            using var ok = await anonymous.SendAsync(withCookie);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        Assert.DoesNotContain(Token, daemon.Process.StdOut + daemon.Process.StdErr);
    }
}
