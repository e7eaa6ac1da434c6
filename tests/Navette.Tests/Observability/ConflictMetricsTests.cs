using System.Text.Json;
using Navette.Config;
using Navette.Tests.Infrastructure;
using Navette.Tests.MultiMaster;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>Conflicts of a two-node mesh counted by /metrics (from the target's conflict log) and listed on the dashboard.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class ConflictMetricsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_conflict_is_counted_by_type_listed_as_recent_and_still_counted_after_a_restart()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon");
        await h.OnAllAsync(MeshFormationTests.Items);
        h.WriteConfig("""
            sets:
              shop:
                tables: [public.items]
                mesh: [paris, lyon]
                conflicts: latest

            """);
        await h.ApplyAsync();
        var toLyon = MeshConfig.SubscriptionName("paris", "lyon");
        (string, string) sub = ("subscription", toLyon);
        await using (var daemon = await MonitoredDaemon.StartAsync(output, h.ConfigPath))
        {
            await h["paris"].ExecuteAsync("INSERT INTO items SELECT g, 'paris', g, 'start' FROM generate_series(1, 10) g");
            await h.WaitCaughtUpAsync();
            // Conflicts already in the log when the daemon first reads it are totals, not recent events: the first read comes first.
            await Eventually.TrueAsync(async () =>
            {
                using var dashboard = JsonDocument.Parse((await daemon.GetTextAsync("api/dashboard")).Body);
                return dashboard.RootElement.GetProperty("samples").GetProperty(toLyon).GetProperty("time").GetArrayLength() > 0;
            }, TimeSpan.FromSeconds(30), "a first sample");
            var m = await daemon.MetricsAsync();
            Assert.Null(m.Value("navette_conflicts_total", sub, ("type", "update_missing")));

            // Lyon loses row 5 without telling anyone (deleted under an origin of its own, so not sent on); paris updates it.
            await h["lyon"].ExecuteAsync("""
                SELECT pg_replication_origin_create('test_forget');
                SELECT pg_replication_origin_session_setup('test_forget');
                SET session_replication_role = replica;
                DELETE FROM items WHERE id = 5;
                SELECT pg_replication_origin_session_reset();
                """);
            await h["paris"].ExecuteAsync("UPDATE items SET qty = 55, note = 'changed' WHERE id = 5");
            await h.WaitCaughtUpAsync();
            m = await Eventually.ValueAsync(daemon.MetricsAsync, s => s.Value("navette_conflicts_total", sub, ("type", "update_missing")) == 1,
                TimeSpan.FromSeconds(30), "the conflict to be counted");
            Assert.Null(m.Value("navette_conflicts_total", ("subscription", MeshConfig.SubscriptionName("lyon", "paris")), ("type", "update_missing")));
            var (_, body) = await Eventually.ValueAsync(() => daemon.GetTextAsync("api/dashboard"), r => r.Body.Contains("\"kind\":\"conflict\""),
                TimeSpan.FromSeconds(30), "the conflict among the recent events");
            using var json = JsonDocument.Parse(body);
            var e = json.RootElement.GetProperty("events").EnumerateArray()
                .First(x => x.GetProperty("kind").GetString() == "conflict" && x.GetProperty("subscription").GetString() == toLyon);
            Assert.Equal("update_missing: \"public\".\"items\" key {\"id\": 5}: applied_incoming (latest)", e.GetProperty("message").GetString());
            Assert.Equal(1, json.RootElement.GetProperty("conflicts").GetProperty(toLyon).GetProperty("update_missing").GetInt64());
        }

        // A new daemon starts from the log's totals.
        await using var again = await MonitoredDaemon.StartAsync(output, h.ConfigPath);
        await Eventually.ValueAsync(again.MetricsAsync, s => s.Value("navette_conflicts_total", sub, ("type", "update_missing")) == 1,
            TimeSpan.FromSeconds(30), "the conflict total after a restart");
        Assert.Equal("(5,paris,55,changed)", await h["lyon"].ScalarAsync<string>("SELECT items::text FROM items WHERE id = 5"));
    }
}
