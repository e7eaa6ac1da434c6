using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Navette.Monitoring.Http;

/// <summary>
/// Checks the token on every request when one is configured: <c>Authorization: Bearer TOKEN</c> (Prometheus,
/// curl), or the cookie the dashboard gets after opening <c>/?token=TOKEN</c> once (a browser cannot add a header
/// to the scripts and styles a page loads). Comparisons take the same time whatever the guess.
/// </summary>
internal sealed class TokenGate(string token)
{
    public const string CookieName = "navette_token";
    private readonly byte[] _expected = SHA256.HashData(Encoding.UTF8.GetBytes(token));

    public bool Matches(string? candidate) =>
        candidate is not null && CryptographicOperations.FixedTimeEquals(_expected, SHA256.HashData(Encoding.UTF8.GetBytes(candidate)));

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && Matches(header["Bearer ".Length..].Trim())
            || Matches(context.Request.Cookies[CookieName]))
        {
            await next(context);
            return;
        }

        if (context.Request.Query.TryGetValue("token", out var fromQuery) && Matches(fromQuery.ToString()))
        {
            // The token leaves the address bar (and the browser's history) at once; the cookie carries it from here.
            context.Response.Cookies.Append(CookieName, fromQuery.ToString(), new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Path = "/",
                Secure = context.Request.IsHttps,
            });
            context.Response.Redirect(context.Request.PathBase + context.Request.Path);
            return;
        }

        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Bearer realm=\"navette\"";
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(
            "401 unauthorized: this endpoint needs the token of navette run --http-token (or NAVETTE_HTTP_TOKEN, or monitoring.http_token): "
            + "send the header 'Authorization: Bearer TOKEN', or open /?token=TOKEN once in a browser\n", context.RequestAborted);
    }
}
