using Npgsql;

namespace Navette.Catalog;

/// <summary>Installs or upgrades the <c>navette</c> schema on one node, under an advisory lock.</summary>
internal static class CatalogInstaller
{
    // Arbitrary constant: serialises concurrent installs on the same database.
    private const long MigrationLockKey = 0x4E41564554544531;

    /// <returns>The versions applied by this call (empty when already current).</returns>
    public static Task<IReadOnlyList<int>> EnsureAsync(NpgsqlConnection conn, CancellationToken ct) =>
        EnsureAsync(conn, CatalogMigrations.Steps, ct);

    /// <summary>Brings the catalog to the last of <paramref name="steps"/> (tests pass their own list to exercise upgrades).</summary>
    internal static async Task<IReadOnlyList<int>> EnsureAsync(NpgsqlConnection conn, IReadOnlyList<CatalogMigrations.Step> steps, CancellationToken ct)
    {
        var latest = steps[^1].Version;
        var applied = new List<int>();
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var cmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", conn, tx))
        {
            cmd.Parameters.AddWithValue(MigrationLockKey);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await using (var cmd = new NpgsqlCommand("""
            CREATE SCHEMA IF NOT EXISTS navette;
            CREATE TABLE IF NOT EXISTS navette.schema_version (
                version     integer PRIMARY KEY,
                description text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now());
            """, conn, tx))
            await cmd.ExecuteNonQueryAsync(ct);

        int current;
        await using (var cmd = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM navette.schema_version", conn, tx))
            current = (int)(await cmd.ExecuteScalarAsync(ct))!;
        if (current > latest)
            throw new NavetteException(
                $"database {conn.Database} on {conn.Host}:{conn.Port} has navette catalog version {current}, newer than this navette ({latest}); upgrade navette");

        foreach (var step in steps.Where(s => s.Version > current).OrderBy(s => s.Version))
        {
            await using (var cmd = new NpgsqlCommand(step.Sql, conn, tx))
                await cmd.ExecuteNonQueryAsync(ct);
            await using (var cmd = new NpgsqlCommand("INSERT INTO navette.schema_version (version, description) VALUES ($1, $2)", conn, tx))
            {
                cmd.Parameters.AddWithValue(step.Version);
                cmd.Parameters.AddWithValue(step.Description);
                await cmd.ExecuteNonQueryAsync(ct);
            }
            applied.Add(step.Version);
        }
        await tx.CommitAsync(ct);
        return applied;
    }
}
