using Npgsql;

namespace Navette.Cli.Demo;

/// <summary>Row count and a digest of every row's text form, per table and node: equal digests mean equal rows.</summary>
internal static class DemoVerifier
{
    public sealed record TableDigest(long Rows, string Md5);

    public static async Task<TableDigest> DigestAsync(string connectionString, string table, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            $"SET TIME ZONE 'UTC'; SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM {table} x", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new TableDigest(r.GetInt64(0), r.GetString(1));
    }
}
