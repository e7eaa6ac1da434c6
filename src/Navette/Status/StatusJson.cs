using System.Text.Json;
using System.Text.Json.Serialization;

namespace Navette.Status;

/// <summary>The JSON form of status: <c>navette status --json</c> and the daemon's <c>/api/status</c> print the same.</summary>
internal static class StatusJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}
