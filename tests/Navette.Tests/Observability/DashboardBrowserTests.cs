using Microsoft.Playwright;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>
/// The dashboard in a real browser (Debian's headless Chromium driven by Playwright) over a running cascade of
/// three nodes under a write load: every node drawn, the subscriptions streaming, the lag chart gaining points.
/// </summary>
[Collection(ObservabilityCollection.Name)]
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";

    private static readonly string[] LaunchArgs =
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

    [Fact]
    public async Task The_dashboard_draws_every_node_and_its_lag_chart_gets_live_points()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: run scripts/install-browser.sh");
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon", "lille");
        await h.OnAllAsync("CREATE TABLE public.orders (id bigint PRIMARY KEY, amount int NOT NULL, note text)");
        await h["paris"].ExecuteAsync("INSERT INTO orders SELECT g, g % 100, 'seed' FROM generate_series(1, 5000) g");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.orders] }
            subscriptions:
              paris_to_lyon: { from: paris, to: lyon, sets: [shop] }
              lyon_to_lille: { from: lyon, to: lille, sets: [shop], forward: true }
            """);
        await h.ApplyAsync();
        await using var daemon = await MonitoredDaemon.StartAsync(output, h.ConfigPath);
        long next = 10_000;
        await using var load = WriteLoad.Start("orders", h["paris"].ConnectionString, async (conn, random, ct) =>
        {
            await using var cmd = new NpgsqlCommand("INSERT INTO orders SELECT g, $2, 'live' FROM generate_series($1, $1 + 4) g", conn);
            cmd.Parameters.AddWithValue(Interlocked.Add(ref next, 5));
            cmd.Parameters.AddWithValue(random.Next(1000));
            await cmd.ExecuteNonQueryAsync(ct);
        }, perSecond: 20, output);

        using var playwright = await Playwright.CreateAsync();
        var profile = Directory.CreateTempSubdirectory("navette-chromium-");
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(profile.FullName, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = LaunchArgs,
            ViewportSize = new ViewportSize { Width = 1360, Height = 960 },
        });
        var page = browser.Pages.FirstOrDefault() ?? await browser.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(daemon.BaseUri.ToString());

        var waitLong = new PageWaitForFunctionOptions { Timeout = 90_000, PollingInterval = 250 };
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#graph g.node').length === 3", null, waitLong);
        var nodes = await page.EvalOnSelectorAllAsync<string[]>("#graph g.node", "els => els.map(e => e.dataset.node).sort()");
        Assert.Equal(new[] { "lille", "lyon", "paris" }, nodes);
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#graph path.edge[data-state=streaming]').length === 2", null, waitLong);
        Assert.Equal(2, await page.Locator("#subs tr").CountAsync());

        await page.WaitForFunctionAsync("() => Number(document.getElementById('chart-lag').dataset.points) >= 2", null, waitLong);
        var before = int.Parse(await page.GetAttributeAsync("#chart-lag", "data-points") ?? "0");
        // Live: later samples arrive without reloading the page.
        await page.WaitForFunctionAsync($"() => Number(document.getElementById('chart-lag').dataset.points) > {before}", null, waitLong);
        Assert.True(await page.Locator("#chart-lag canvas").CountAsync() >= 1, "the lag chart is drawn");
        Assert.Equal("healthy", await page.InnerTextAsync("#health"));
        // Wait for a few more samples so that the picture shows some history.
        await page.WaitForFunctionAsync($"() => Number(document.getElementById('chart-rows').dataset.points) >= {before + 3}", null, waitLong);

        var artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(artifacts);
        var shot = Path.Combine(artifacts, "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        output.WriteLine($"screenshot: {shot}");
        Console.WriteLine($"dashboard screenshot: {shot}");
        // NAVETTE_DOCS_SCREENSHOT=1 refreshes the picture in docs/monitoring.md.
        if (Environment.GetEnvironmentVariable("NAVETTE_DOCS_SCREENSHOT") == "1")
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(RepositoryRoot(), "docs", "monitoring-dashboard.png"), FullPage = true });
        Assert.Empty(errors);

        await load.StopAsync();
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["paris"], h["lille"], "public.orders", 5000);
        profile.Delete(recursive: true);
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Navette.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("Navette.slnx not found above " + AppContext.BaseDirectory);
    }
}
