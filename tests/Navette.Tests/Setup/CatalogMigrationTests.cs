using Navette.Catalog;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Setup;

/// <summary>The navette schema is versioned: each migration runs once, in order, and a newer catalog is refused.</summary>
public sealed class CatalogMigrationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Apply_installs_the_latest_version_once_and_refuses_a_catalog_newer_than_itself()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "a", "b");
        await h.OnAllAsync("CREATE TABLE public.items (id int PRIMARY KEY)");
        h.WriteConfig("""
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop] }
            """);
        await h.ApplyAsync();
        const string versions = "SELECT version || ' ' || description FROM navette.schema_version ORDER BY version";
        const string appliedAt = "SELECT version || ' ' || applied_at FROM navette.schema_version ORDER BY version";
        var expected = CatalogMigrations.Steps.Select(s => $"{s.Version} {s.Description}").ToList();
        foreach (var node in new[] { "a", "b" })
        {
            Assert.Equal(CatalogMigrations.LatestVersion, await h[node].ScalarAsync<int>("SELECT max(version) FROM navette.schema_version"));
            Assert.Equal(expected, await ApplyKit.StringsAsync(h[node], versions));
        }
        var before = await ApplyKit.StringsAsync(h["a"], appliedAt);

        Assert.Empty(await h.ApplyAsync());
        Assert.Equal(before, await ApplyKit.StringsAsync(h["a"], appliedAt)); // not re-applied: same rows, same applied_at

        var newer = CatalogMigrations.LatestVersion + 1;
        await h["b"].ExecuteAsync($"INSERT INTO navette.schema_version (version, description) VALUES ({newer}, 'from the future')");
        ApplyKit.AssertProblems(ApplyKit.Problems(await Assert.ThrowsAsync<NavetteException>(h.ApplyAsync)),
            $"node b: its navette catalog is version {newer}, newer than this navette's ({CatalogMigrations.LatestVersion}); upgrade navette");
    }

    [Fact]
    public async Task Upgrades_apply_only_the_missing_steps_and_concurrent_installs_apply_each_step_once()
    {
        await using var pg = await TestClusters.StartAsync("catalog");
        CatalogMigrations.Step[] v1 = [new(1, "first", "CREATE TABLE navette.one (id int)")];
        CatalogMigrations.Step[] v3 = [.. v1, new(2, "second", "CREATE TABLE navette.two (id int)"), new(3, "third", "ALTER TABLE navette.two ADD COLUMN note text")];

        await using (var conn = await ApplyKit.OpenAsync(pg))
        {
            Assert.Equal([1], await CatalogInstaller.EnsureAsync(conn, v1, CancellationToken.None));
            Assert.Equal([2, 3], await CatalogInstaller.EnsureAsync(conn, v3, CancellationToken.None));
            Assert.Empty(await CatalogInstaller.EnsureAsync(conn, v3, CancellationToken.None));
            var e = await Assert.ThrowsAsync<NavetteException>(() => CatalogInstaller.EnsureAsync(conn, v1, CancellationToken.None));
            Assert.Equal($"database postgres on 127.0.0.1:{pg.Port} has navette catalog version 3, newer than this navette (1); upgrade navette", e.Message);
        }
        Assert.Equal(["1 first", "2 second", "3 third"], await ApplyKit.StringsAsync(pg, "SELECT version || ' ' || description FROM navette.schema_version ORDER BY 1"));
        Assert.Equal(["id", "note"], await ApplyKit.StringsAsync(pg, "SELECT attname FROM pg_attribute WHERE attrelid = 'navette.two'::regclass AND attnum > 0 ORDER BY attnum"));

        // A failing step leaves the catalog at the version before it.
        CatalogMigrations.Step[] broken = [.. v3, new(4, "broken", "CREATE TABLE navette.four (id int); SELECT 1/0")];
        await using (var conn = await ApplyKit.OpenAsync(pg))
            await Assert.ThrowsAsync<Npgsql.PostgresException>(() => CatalogInstaller.EnsureAsync(conn, broken, CancellationToken.None));
        Assert.Equal(3, await pg.ScalarAsync<int>("SELECT max(version) FROM navette.schema_version"));
        Assert.Null(await pg.ScalarAsync<string>("SELECT to_regclass('navette.four')::text"));

        // Several installers at once (two `navette apply` runs): the advisory lock lets each step run exactly once.
        await pg.ExecuteAsync("DROP SCHEMA navette CASCADE");
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
        {
            await using var conn = await ApplyKit.OpenAsync(pg);
            return await CatalogInstaller.EnsureAsync(conn, v3, CancellationToken.None);
        }));
        Assert.Single(results, r => r.Count > 0);
        Assert.Equal([1, 2, 3], results.Single(r => r.Count > 0));
        Assert.Equal(3L, await pg.ScalarAsync<long>("SELECT count(*) FROM navette.schema_version"));
    }
}
