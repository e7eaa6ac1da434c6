using System.Collections.Frozen;
using System.Reflection;

namespace Navette.Monitoring.Http;

/// <summary>The dashboard's page, script, styles and vendored chart library, embedded in the assembly (the page works offline).</summary>
internal static class DashboardAssets
{
    private const string Prefix = "dashboard/";

    private static readonly FrozenDictionary<string, (byte[] Body, string ContentType)> s_assets = Load();

    public static bool TryGet(string path, out byte[] body, out string contentType)
    {
        if (s_assets.TryGetValue(path, out var asset))
        {
            (body, contentType) = asset;
            return true;
        }
        (body, contentType) = ([], "");
        return false;
    }

    private static FrozenDictionary<string, (byte[], string)> Load()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            assets[name[Prefix.Length..]] = (buffer.ToArray(), ContentTypeOf(name));
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentTypeOf(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
}
