using Navette.Config;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Standby;

/// <summary>A streaming standby's whole life under a write load: created, read, watched, promoted, and its old primary rewound to follow it.</summary>
public sealed class StreamingStandbyTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Streaming_standby_is_created_under_load_read_watched_promoted_without_loss_and_the_old_primary_rewound_to_follow_it()
    {
        await using var h = await StandbyHarness.StartAsync(output, seedRows: 2000, rewindable: true);
        var load = LedgerWorkload.Start(h.Primary, perSecond: 100, output);
        await load.WaitForCommitsAsync(50, Patience);

        // Created under load: a hot streaming standby through a slot.
        var s1 = await h.CreateAsync("s1", "--mode", "streaming", "--hot", "--slot");
        var recorded = h.Config.Standbys["s1"];
        Assert.Equal(("paris", s1.DataDir, s1.Port, StandbyMode.Streaming, true, true), (recorded.From, recorded.PgData, recorded.Port, recorded.Mode, recorded.Hot, recorded.Slot));
        Assert.StartsWith(StandbyHarness.FileHeader, File.ReadAllText(h.ConfigPath));
        Assert.True(await h.Primary.ScalarAsync<bool>("SELECT active FROM pg_replication_slots WHERE slot_name = 'navette_standby_s1' AND slot_type = 'physical'"));

        // Hot: it answers reads while the primary goes on writing, and refuses writes.
        var seen = await s1.ScalarAsync<long>("SELECT count(*) FROM ledger");
        await Eventually.TrueAsync(async () => await s1.ScalarAsync<long>("SELECT count(*) FROM ledger") > seen + 50, Patience, "new rows to show on the standby");
        var refused = await Assert.ThrowsAsync<PostgresException>(() => s1.ExecuteAsync("INSERT INTO accounts VALUES (1000, 0, 0)"));
        Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, refused.SqlState);

        // Watched: streaming, with positions and lag in bytes and seconds, in JSON and in navette status.
        var status = await h.StatusAsync("s1");
        output.WriteLine(status.ToString());
        Assert.Equal("streaming", status.GetProperty("state").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, status.GetProperty("error").ValueKind);
        Assert.True(status.GetProperty("lag_bytes").GetInt64() >= 0);
        Assert.True(status.GetProperty("lag_seconds").GetDouble() is >= 0 and < 60, status.ToString());
        Assert.StartsWith("0/", status.GetProperty("received_lsn").GetString());
        Assert.StartsWith("0/", status.GetProperty("replayed_lsn").GetString());
        Assert.True(status.GetProperty("slot_active").GetBoolean());
        var table = await h.NavetteAsync("status");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Matches(@"(?m)^s1\s+paris\s+streaming, hot\s+streaming\s+0/", table.StdOut);

        // The same rows on both once the load pauses.
        var committed = await load.StopAsync();
        await StandbyHarness.WaitReplayedAsync(h.Primary, s1, Patience);
        await LedgerWorkload.AssertIntactAsync(h.Primary, s1, 2000 + committed);

        // Promoted while the primary still takes writes: every row committed before promote started is there.
        load = LedgerWorkload.Start(h.Primary, perSecond: 100, output, seed: 11);
        await load.WaitForCommitsAsync(50, Patience);
        var committedBeforePromote = await h.Primary.ScalarAsync<long>("SELECT max(id) FROM ledger");
        var promote = await h.NavetteAsync("standby", "promote", "s1");
        Assert.True(promote.ExitCode == 0, promote.ToString());
        await load.StopAsync();
        await StandbyHarness.AssertLedgerPrefixAsync(h.Primary, s1, committedBeforePromote);
        Assert.False(await s1.ScalarAsync<bool>("SELECT pg_is_in_recovery()"));
        var config = h.Config;
        Assert.True(config.Nodes.ContainsKey("s1") && !config.Standbys.ContainsKey("s1"), File.ReadAllText(h.ConfigPath));
        Assert.Equal(0L, await h.Primary.ScalarAsync<long>("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'navette_standby_s1'"));

        // The promoted server takes writes: the workload goes on there.
        var promotedRows = await s1.ScalarAsync<long>("SELECT count(*) FROM ledger");
        var onS1 = LedgerWorkload.Start(s1, perSecond: 100, output, seed: 13);
        await onS1.WaitForCommitsAsync(50, Patience);

        // The old primary is rewound to follow it, while s1 keeps writing.
        var rewind = await h.NavetteAsync("standby", "rewind", "paris", "--from", "s1", "--hot", "--slot");
        Assert.True(rewind.ExitCode == 0, rewind.ToString());
        config = h.Config;
        Assert.Equal(("s1", h.Primary.DataDir, h.Primary.Port, StandbyMode.Streaming), (config.Standbys["paris"].From, config.Standbys["paris"].PgData, config.Standbys["paris"].Port, config.Standbys["paris"].Mode));
        Assert.Equal(["s1"], config.Nodes.Keys);
        Assert.True(await h.Primary.ScalarAsync<bool>("SELECT pg_is_in_recovery()"));

        // Rows written on the new primary reach the old one.
        var written = await onS1.StopAsync();
        await StandbyHarness.WaitReplayedAsync(s1, h.Primary, Patience);
        await LedgerWorkload.AssertIntactAsync(s1, h.Primary, promotedRows + written);
        var after = await h.StatusAsync("paris");
        Assert.Equal("streaming", after.GetProperty("state").GetString());
        Assert.Equal(0L, await h.Primary.ScalarAsync<long>("SELECT count(*) FROM pg_replication_slots"));
    }
}
