using System.Text.Json;
using Navette.Config;
using Navette.Tests.Infrastructure;
using NpgsqlTypes;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Standby;

/// <summary>Standbys fed from a WAL archive: the warm standby (no queries), and a hot one applying WAL late.</summary>
public sealed class ArchiveStandbyTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Warm_standby_needs_a_restart_of_the_primary_catches_up_from_the_archive_and_promotes_without_loss()
    {
        await using var h = await StandbyHarness.StartAsync(output, seedRows: 1000);
        await using var load = LedgerWorkload.Start(h.Primary, perSecond: 50, output);
        await load.WaitForCommitsAsync(20, Patience);

        // archive_mode is off: navette says what it takes and changes nothing unless allowed to restart the primary.
        var pgdata = Path.Combine(TestClusters.RootDir, "refused-" + Guid.NewGuid().ToString("N")[..6]);
        var refused = await h.NavetteAsync("standby", "create", "--from", "paris", "--name", "w1", "--pgdata", pgdata,
            "--port", Navette.Processes.PgProcesses.FindFreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--mode", "archive", "--archive", h.Archive);
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("archive_mode = off, and turning it on takes a restart of paris; nothing was changed", refused.StdErr);
        Assert.Contains("--restart-primary", refused.StdErr);
        Assert.Equal("off", await h.Primary.ScalarAsync<string>("SHOW archive_mode"));
        Assert.Equal(0L, await h.Primary.ScalarAsync<long>("SELECT count(*) FROM pg_file_settings WHERE name LIKE 'archive%'"));
        Assert.False(Directory.Exists(pgdata));
        Assert.False(Directory.Exists(h.Archive));
        Assert.False(h.Config.Standbys.ContainsKey("w1"));

        // Every archived segment costs two navette processes (wal-archive, wal-restore): 2 s keeps the machine free for other tests.
        var w1 = await h.CreateAsync("w1", "--mode", "archive", "--archive", h.Archive, "--archive-timeout", "2", "--restart-primary");
        Assert.Equal("on", await h.Primary.ScalarAsync<string>("SHOW archive_mode"));
        Assert.Equal("2s", await h.Primary.ScalarAsync<string>("SHOW archive_timeout"));
        Assert.Equal((StandbyMode.Archive, false, h.Archive), (h.Config.Standbys["w1"].Mode, h.Config.Standbys["w1"].Hot, h.Config.Standbys["w1"].Archive));

        // Not hot, so status reads its progress from wal-restore: it moves on as the primary archives segments.
        var first = await h.StatusAsync("w1");
        output.WriteLine(first.ToString());
        Assert.Equal("archive recovery", first.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Number, first.GetProperty("archive_backlog").ValueKind);
        var startLsn = NpgsqlLogSequenceNumber.Parse(first.GetProperty("replayed_lsn").GetString()!);
        await Eventually.TrueAsync(async () =>
        {
            var now = await h.StatusAsync("w1");
            return now.GetProperty("replayed_lsn").GetString() is { } lsn && (ulong)NpgsqlLogSequenceNumber.Parse(lsn) > (ulong)startLsn;
        }, Patience, "the warm standby to replay further segments from the archive", pollMs: 2000);
        Assert.True(Directory.GetFiles(h.Archive, "0000000100000000000000??").Length >= 3);

        // Promoted under load: the rows committed before are all there (promote pushes the current segment to the archive first).
        var committedBefore = await h.Primary.ScalarAsync<long>("SELECT max(id) FROM ledger");
        var promote = await h.NavetteAsync("standby", "promote", "w1");
        Assert.True(promote.ExitCode == 0, promote.ToString());
        await load.StopAsync();
        await StandbyHarness.AssertLedgerPrefixAsync(h.Primary, w1, committedBefore);
        await w1.ExecuteAsync("INSERT INTO accounts VALUES (1000, 0, 0)");
        Assert.True(h.Config.Nodes.ContainsKey("w1"));
    }

    [Fact]
    public async Task Hot_archive_standby_answers_reads_and_applies_no_earlier_than_its_delay()
    {
        // archive_mode already on (no restart needed); navette sets archive_command and archive_timeout.
        await using var h = await StandbyHarness.StartAsync(output, seedRows: 500, settings: new Dictionary<string, string> { ["archive_mode"] = "on" });
        await h.Primary.ExecuteAsync("CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL)");
        await using var load = LedgerWorkload.Start(h.Primary, perSecond: 30, output);

        var standby = await h.CreateAsync("h1", "--mode", "archive", "--hot", "--archive", h.Archive, "--archive-timeout", "2", "--delay", "2s");
        Assert.Equal("2s", await standby.ScalarAsync<string>("SHOW recovery_min_apply_delay"));
        Assert.Equal("2s", h.Config.Standbys["h1"].Delay);

        for (var i = 1; i <= 2; i++)
        {
            await h.Primary.ExecuteAsync($"INSERT INTO marker VALUES ({i}, clock_timestamp())");
            // Visible only once replayed, which the delay holds back until commit time + 2 s on the standby's clock
            // (the same machine's), and 'at' was taken before the commit.
            var age = await Eventually.ValueAsync(
                () => standby.ScalarAsync<double?>($"SELECT extract(epoch FROM clock_timestamp() - at)::float8 FROM marker WHERE id = {i}"),
                a => a is not null, Patience, $"marker {i} on the hot archive standby", pollMs: 100);
            output.WriteLine($"marker {i} seen {age:F2} s after it was written");
            Assert.True(age >= 1.99, $"marker {i} was applied {age:F2} s after its commit, before the 2 s delay");
        }

        var committed = await load.StopAsync();
        await h.Primary.ExecuteAsync("SELECT pg_switch_wal()");
        await StandbyHarness.WaitReplayedAsync(h.Primary, standby, Patience);
        await LedgerWorkload.AssertIntactAsync(h.Primary, standby, 500 + committed);
        var status = await h.StatusAsync("h1");
        Assert.Equal(("archive recovery", true, "archive"), (status.GetProperty("state").GetString(), status.GetProperty("hot").GetBoolean(), status.GetProperty("mode").GetString()));
        Assert.Matches("^0000000100000000000000[0-9A-F]{2}$", status.GetProperty("last_restored_wal").GetString());
        Assert.Equal(JsonValueKind.String, status.GetProperty("last_replayed_commit").ValueKind);
    }
}
