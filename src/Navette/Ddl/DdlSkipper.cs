using Navette.Config;
using Npgsql;

namespace Navette.Ddl;

/// <summary><c>navette skip-ddl</c>: tells a subscription stopped on a schema change to pass over it.</summary>
internal static class DdlSkipper
{
    public static async Task SkipAsync(NavetteConfig config, string subscription, long id, CancellationToken ct)
    {
        if (!config.Subscriptions.TryGetValue(subscription, out var sub))
            throw new NavetteException($"no subscription named {subscription} in {config.SourcePath}; defined: {string.Join(", ", config.Subscriptions.Keys)}");
        await using var conn = new NpgsqlConnection(config.Nodes[sub.To].ToNpgsqlConnectionString());
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "INSERT INTO navette.ddl_skip (subscription, origin_node, ddl_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", conn);
        cmd.Parameters.AddWithValue(subscription);
        cmd.Parameters.AddWithValue(sub.From);
        cmd.Parameters.AddWithValue(id);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
