using System.Diagnostics;
using Navette.Standby;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Standby;

/// <summary>
/// <c>navette wal-archive</c> and <c>navette wal-restore</c> on real files, without a server: what PostgreSQL's
/// archiver and startup process would see.
/// </summary>
public sealed class WalFileTests : IDisposable
{
    private const string Segment = "000000010000000000000002";
    private const int SegmentSize = 1 << 20; // the fake standby's pg_wal says segments are 1 MB
    private readonly string _root = Directory.CreateTempSubdirectory("navette-wal-").FullName;
    private readonly List<string> _log = [];
    private readonly ITestOutputHelper _output;

    private string Archive => Path.Combine(_root, "archive");
    private string DataDir => Path.Combine(_root, "pgdata");

    public WalFileTests(ITestOutputHelper output)
    {
        _output = output;
        Directory.CreateDirectory(Archive);
        Directory.CreateDirectory(Path.Combine(DataDir, "pg_wal"));
        File.WriteAllBytes(Path.Combine(DataDir, "pg_wal", "000000010000000000000001"), new byte[SegmentSize]);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Log(string line)
    {
        lock (_log) _log.Add(line);
        _output.WriteLine(line);
    }

    private string Logged { get { lock (_log) return string.Join("\n", _log); } }

    private static byte[] Bytes(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(i * 31 + seed)).ToArray();

    private Task<int> RestoreAsync(string file, double maxWaitSeconds, string? trigger = null) =>
        WalRestorer.RunAsync(new WalRestoreRequest(Archive, file, "pg_wal/RECOVERYXLOG", DataDir,
            TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(maxWaitSeconds), trigger), Log, Log, CancellationToken.None);

    private string Restored => Path.Combine(DataDir, "pg_wal", "RECOVERYXLOG");

    // ------------------------------------------------------------------ wal-archive

    [Fact]
    public async Task Archiving_copies_the_file_whole_and_leaves_no_temporary_file()
    {
        var source = Path.Combine(DataDir, "pg_wal", Segment);
        File.WriteAllBytes(source, Bytes(SegmentSize, 1));

        Assert.Equal(0, await WalArchiver.RunAsync(Archive, source, Segment, Log, CancellationToken.None));

        Assert.Equal(File.ReadAllBytes(source), File.ReadAllBytes(Path.Combine(Archive, Segment)));
        Assert.Equal([Segment], Directory.GetFiles(Archive).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Archiving_the_same_file_again_succeeds_and_a_different_one_is_refused()
    {
        var source = Path.Combine(DataDir, "pg_wal", Segment);
        File.WriteAllBytes(source, Bytes(SegmentSize, 1));
        Assert.Equal(0, await WalArchiver.RunAsync(Archive, source, Segment, Log, CancellationToken.None));

        Assert.Equal(0, await WalArchiver.RunAsync(Archive, source, Segment, Log, CancellationToken.None));
        Assert.Contains("already in the archive with the same content", Logged);

        File.WriteAllBytes(source, Bytes(SegmentSize, 2));
        Assert.Equal(1, await WalArchiver.RunAsync(Archive, source, Segment, Log, CancellationToken.None));
        Assert.Contains("refusing to overwrite", Logged);
        Assert.Equal(Bytes(SegmentSize, 1), File.ReadAllBytes(Path.Combine(Archive, Segment)));
        Assert.Equal([Segment], Directory.GetFiles(Archive).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_missing_archive_folder_is_an_error_not_created()
    {
        var source = Path.Combine(DataDir, "pg_wal", "000000010000000000000001");
        var missing = Path.Combine(_root, "unmounted");
        Assert.Equal(1, await WalArchiver.RunAsync(missing, source, "000000010000000000000001", Log, CancellationToken.None));
        Assert.False(Directory.Exists(missing));
        Assert.Contains("does not exist", Logged);
    }

    [Fact]
    public async Task Wal_archive_command_exits_1_with_the_reason_when_it_refuses()
    {
        var source = Path.Combine(DataDir, "pg_wal", Segment);
        File.WriteAllBytes(source, Bytes(1000, 1));
        File.WriteAllBytes(Path.Combine(Archive, Segment), Bytes(1000, 2));

        var result = await NavetteProcess.RunAsync(_output, TimeSpan.FromSeconds(60), "wal-archive", Archive, source, Segment);

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("refusing to overwrite " + Path.Combine(Archive, Segment), result.StdErr);
        Assert.Equal(Bytes(1000, 2), File.ReadAllBytes(Path.Combine(Archive, Segment)));
    }

    // ------------------------------------------------------------------ wal-restore

    [Fact]
    public async Task A_missing_segment_is_waited_for_then_reported_missing_after_max_wait()
    {
        var clock = Stopwatch.StartNew();
        Assert.Equal(1, await RestoreAsync(Segment, maxWaitSeconds: 1.0));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.95), $"gave up after {clock.Elapsed.TotalSeconds:F2} s");
        Assert.False(File.Exists(Restored));
        Assert.Contains($"{Segment} is not in {Archive} after", Logged);
    }

    [Fact]
    public async Task A_segment_arriving_while_waiting_is_restored()
    {
        var restore = RestoreAsync(Segment, maxWaitSeconds: 60);
        await Task.Delay(300);
        Assert.False(restore.IsCompleted);
        File.WriteAllBytes(Path.Combine(Archive, Segment), Bytes(SegmentSize, 3));

        Assert.Equal(0, await restore.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(Bytes(SegmentSize, 3), File.ReadAllBytes(Restored));
        Assert.Empty(Directory.GetFiles(Path.Combine(DataDir, "pg_wal"), "*.navette-tmp"));
        Assert.Equal(Segment, RestoreProgress.Read(DataDir)[RestoreProgress.Restored].Segment);
    }

    [Fact]
    public async Task A_partly_written_segment_is_not_handed_out_until_it_is_whole()
    {
        var target = Path.Combine(Archive, Segment);
        var content = Bytes(SegmentSize, 4);
        await using (var partial = new FileStream(target, FileMode.CreateNew))
            partial.Write(content, 0, SegmentSize / 2);

        var restore = RestoreAsync(Segment, maxWaitSeconds: 60);
        await Task.Delay(1000);
        Assert.False(restore.IsCompleted, "a half-written segment was handed out");
        Assert.False(File.Exists(Restored));

        await using (var rest = new FileStream(target, FileMode.Append))
            rest.Write(content, SegmentSize / 2, SegmentSize / 2);
        Assert.Equal(0, await restore.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(content, File.ReadAllBytes(Restored));
    }

    [Fact]
    public async Task Without_a_known_segment_size_a_file_of_odd_size_is_never_handed_out()
    {
        File.Delete(Path.Combine(DataDir, "pg_wal", "000000010000000000000001"));
        File.WriteAllBytes(Path.Combine(Archive, Segment), Bytes(700_000, 5));

        Assert.Equal(1, await RestoreAsync(Segment, maxWaitSeconds: 1));
        Assert.False(File.Exists(Restored));
        Assert.Contains("not a whole segment", Logged);
    }

    [Fact]
    public async Task A_missing_history_file_fails_at_once_and_a_present_one_is_restored()
    {
        var clock = Stopwatch.StartNew();
        Assert.Equal(1, await RestoreAsync("00000002.history", maxWaitSeconds: 60));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"waited {clock.Elapsed.TotalSeconds:F1} s for a history file");

        File.WriteAllText(Path.Combine(Archive, "00000002.history"), "1\t0/3000000\tno recovery target specified\n");
        Assert.Equal(0, await RestoreAsync("00000002.history", maxWaitSeconds: 60));
        Assert.Equal(File.ReadAllText(Path.Combine(Archive, "00000002.history")), File.ReadAllText(Restored));
    }

    [Fact]
    public async Task A_trigger_file_ends_the_wait_promptly_and_requests_promotion()
    {
        var trigger = Path.Combine(_root, "failover.trigger");
        var clock = Stopwatch.StartNew();
        var restore = RestoreAsync(Segment, maxWaitSeconds: 120, trigger);
        await Task.Delay(300);
        File.WriteAllText(trigger, string.Empty);

        Assert.Equal(1, await restore.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"returned after {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(File.Exists(Path.Combine(DataDir, WalRestorer.PromoteSignalFile)), "no promote signal file written");
        Assert.False(File.Exists(trigger), "the trigger file was left behind (it would promote the server again after a rewind)");
        Assert.False(File.Exists(Restored));
    }

    [Fact]
    public async Task Promotion_stops_the_waiting_but_what_is_in_the_archive_is_still_restored()
    {
        File.WriteAllText(Path.Combine(DataDir, WalRestorer.PromoteSignalFile), string.Empty);
        File.WriteAllBytes(Path.Combine(Archive, Segment), Bytes(SegmentSize, 6));

        Assert.Equal(0, await RestoreAsync(Segment, maxWaitSeconds: 120));
        var clock = Stopwatch.StartNew();
        Assert.Equal(1, await RestoreAsync("000000010000000000000003", maxWaitSeconds: 120));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"returned after {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Contains("promotion requested", Logged);
    }

    [Fact]
    public async Task Wal_restore_command_answers_1_at_once_for_a_missing_history_file()
    {
        var result = await NavetteProcess.RunAsync(_output, TimeSpan.FromSeconds(60),
            "wal-restore", Archive, "00000003.history", "pg_wal/RECOVERYHISTORY", "--pgdata", DataDir, "--max-wait", "300");
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.False(File.Exists(Path.Combine(DataDir, "pg_wal", "RECOVERYHISTORY")));
    }
}
