using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Status;

namespace Navette.Monitoring.Http;

/// <summary>
/// The daemon's HTTP endpoint (Kestrel): <c>/metrics</c>, <c>/health</c>, <c>/api/status</c>, <c>/api/dashboard</c>
/// and the dashboard page. Read-only: nothing served changes any node.
/// </summary>
internal sealed class MonitoringServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MonitoringServer(WebApplication app) => _app = app;

    /// <summary>
    /// The status pages name every node, table and error: off loopback they need a token, and without one the daemon
    /// refuses to start rather than publish them.
    /// </summary>
    public static void CheckExposure(HttpEndpoint endpoint, string? token)
    {
        if (!endpoint.IsLoopback && token is null)
            throw new NavetteException(
                $"--http {endpoint}: not a loopback address, and no token is set: anyone who can reach it would read the replication status. "
                + "Set a token of at least 16 characters with --http-token (or the NAVETTE_HTTP_TOKEN environment variable, or monitoring.http_token in the configuration), "
                + "or listen on 127.0.0.1");
        if (token is { Length: < HttpEndpoint.MinTokenLength })
            throw new NavetteException($"the HTTP token is too short ({token.Length} characters): use at least {HttpEndpoint.MinTokenLength}");
    }

    public static async Task<MonitoringServer> StartAsync(HttpEndpoint endpoint, string? token, DaemonMonitor monitor, ILoggerFactory logs, CancellationToken ct)
    {
        CheckExposure(endpoint, token);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ForwardingLoggerProvider(logs));
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // SIGINT/SIGTERM belong to the daemon, which stops this server itself.
        builder.Services.AddSingleton<IHostLifetime, NoSignalsLifetime>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(endpoint.Address, endpoint.Port);
        });
        var app = builder.Build();
        if (token is not null)
        {
            var gate = new TokenGate(token);
            app.Use((context, next) => gate.InvokeAsync(context, next));
        }
        Map(app, monitor);
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new NavetteException($"--http {endpoint}: cannot listen there: {e.Message}", e);
        }
        logs.CreateLogger("navette.http").LogInformation("monitoring endpoint on http://{Endpoint}/ (metrics, health, dashboard){Token}",
            endpoint, token is null ? "" : ", token required");
        return new MonitoringServer(app);
    }

    private static void Map(WebApplication app, DaemonMonitor monitor)
    {
        var compact = new JsonSerializerOptions(StatusJson.Options) { WriteIndented = false };
        app.MapGet("/metrics", async Task<IResult> (HttpContext http) =>
        {
            var rows = await monitor.StatusAsync(TimeSpan.FromSeconds(1), http.RequestAborted);
            return Results.Text(MetricsExporter.Render(monitor, rows), PrometheusWriter.ContentType);
        });
        app.MapGet("/health", async Task<IResult> (HttpContext http) =>
        {
            var report = await monitor.HealthAsync(http.RequestAborted);
            return Results.Text(report.ToText(monitor.Running.Count), "text/plain; charset=utf-8", statusCode: report.Healthy ? 200 : 503);
        });
        // Serialised here rather than by Results.Json: the bytes are exactly those of navette status --json. The explicit
        // return types keep these lambdas from binding to MapGet(RequestDelegate), which would drop the result.
        app.MapGet("/api/status", async Task<IResult> (HttpContext http) =>
            Json(JsonSerializer.Serialize(await monitor.StatusAsync(TimeSpan.FromSeconds(1), http.RequestAborted), StatusJson.Options)));
        app.MapGet("/api/dashboard", async Task<IResult> (HttpContext http) =>
            Json(JsonSerializer.Serialize(await DashboardData.ReadAsync(monitor, http.RequestAborted), compact)));
        app.MapGet("/", IResult (HttpContext http) => Asset(http, "index.html"));
        app.MapGet("/assets/{**path}", IResult (HttpContext http, string path) => Asset(http, path));
    }

    private static IResult Json(string json) => Results.Text(json, "application/json; charset=utf-8");

    private static IResult Asset(HttpContext http, string path)
    {
        if (!DashboardAssets.TryGet(path, out var body, out var type)) return Results.NotFound();
        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.ContentSecurityPolicy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";
        return Results.Bytes(body, type);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try { await _app.StopAsync(timeout.Token); } catch (OperationCanceledException) { }
        await _app.DisposeAsync();
    }

    private sealed class NoSignalsLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class ForwardingLoggerProvider(ILoggerFactory logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => logs.CreateLogger(categoryName);
        public void Dispose() { }
    }
}
