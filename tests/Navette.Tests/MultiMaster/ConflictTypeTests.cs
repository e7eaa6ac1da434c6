using Navette.Conflicts;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.MultiMaster;

/// <summary>
/// Each conflict type produced on purpose between two nodes of a mesh (writes made while the daemon is stopped, so both
/// sides change the same row before seeing the other's change), with the log row and the surviving data asserted.
/// </summary>
public sealed class ConflictTypeTests(ITestOutputHelper output)
{
    private async Task<ReplicationHarness> MeshAsync(string policy = "latest", string tableOptions = "")
    {
        var h = await ReplicationHarness.StartAsync(output, "paris", "lyon");
        await h.OnAllAsync(MeshFormationTests.Items);
        h.WriteConfig($"""
            sets:
              shop:
                tables: [{(tableOptions.Length == 0 ? "public.items" : $"{{ name: public.items, {tableOptions} }}")}]
                mesh: [paris, lyon]
                conflicts: {policy}

            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h["paris"].ExecuteAsync("INSERT INTO items SELECT g, 'paris', g, 'start' FROM generate_series(1, 10) g");
        await h.WaitCaughtUpAsync();
        await h.StopDaemonAsync();
        return h;
    }

    private static async Task<List<(string Type, string Outcome, string? LocalOrigin, string RemoteOrigin, string Local, string Remote)>> LogAsync(ReplicationHarness h, string node, int id)
    {
        var (entries, _) = await new ConflictReport(h.Config).ReadAsync(node, null, "public.items", 100, CancellationToken.None);
        return entries.Where(e => e.Key.GetProperty("id").GetInt32() == id).OrderBy(e => e.Id)
            .Select(e => (e.Type, e.Outcome, e.LocalOrigin, e.RemoteOrigin, e.Local?.GetRawText() ?? "", e.Remote?.GetRawText() ?? "")).ToList();
    }

    private static Task<string?> RowAsync(ReplicationHarness h, string node, int id) =>
        h[node].ScalarAsync<string>($"SELECT items::text FROM items WHERE id = {id}");

    /// <summary>
    /// Forgets a row on one node only: deleted under the subscription's own origin (not sent on) and without a tombstone.
    /// The session ends with the command, which releases the origin (a reset inside the same transaction would untag it).
    /// </summary>
    private static Task ForgetAsync(ReplicationHarness h, string node, string origin, int id) =>
        h[node].ExecuteAsync($"""
            SELECT pg_replication_origin_session_setup('navette_{origin}');
            SET session_replication_role = replica;
            DELETE FROM items WHERE id = {id};
            """);

    [Fact]
    public async Task Insert_exists_keeps_the_later_insert_everywhere()
    {
        await using var h = await MeshAsync();
        await h["paris"].ExecuteAsync("INSERT INTO items VALUES (100, 'paris', 1, 'first')");
        await h["lyon"].ExecuteAsync("INSERT INTO items VALUES (100, 'lyon', 2, 'second')");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal("(100,lyon,2,second)", await RowAsync(h, "paris", 100));
        Assert.Equal("(100,lyon,2,second)", await RowAsync(h, "lyon", 100));
        var atParis = Assert.Single(await LogAsync(h, "paris", 100));
        Assert.Equal(("insert_exists", "applied_incoming", "paris", "lyon"), (atParis.Type, atParis.Outcome, atParis.LocalOrigin, atParis.RemoteOrigin));
        Assert.Contains("\"owner\": \"paris\"", atParis.Local);
        Assert.Contains("\"owner\": \"lyon\"", atParis.Remote);
        var atLyon = Assert.Single(await LogAsync(h, "lyon", 100));
        Assert.Equal(("insert_exists", "kept_local", "lyon", "paris"), (atLyon.Type, atLyon.Outcome, atLyon.LocalOrigin, atLyon.RemoteOrigin));
    }

    [Fact]
    public async Task Update_update_keeps_the_later_update_everywhere()
    {
        await using var h = await MeshAsync();
        await h["lyon"].ExecuteAsync("UPDATE items SET qty = 500, note = 'lyon first' WHERE id = 3");
        await h["paris"].ExecuteAsync("UPDATE items SET qty = 700, note = 'paris second' WHERE id = 3");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal("(3,paris,700,\"paris second\")", await RowAsync(h, "lyon", 3));
        Assert.Equal("(3,paris,700,\"paris second\")", await RowAsync(h, "paris", 3));
        Assert.Equal(("update_update", "applied_incoming"), Pick(Assert.Single(await LogAsync(h, "lyon", 3))));
        Assert.Equal(("update_update", "kept_local"), Pick(Assert.Single(await LogAsync(h, "paris", 3))));
    }

    [Fact]
    public async Task Update_missing_inserts_the_row_and_delete_missing_remembers_the_delete()
    {
        await using var h = await MeshAsync();
        await ForgetAsync(h, "lyon", "mesh_paris_lyon", 4);
        await ForgetAsync(h, "lyon", "mesh_paris_lyon", 5);
        await h["paris"].ExecuteAsync("UPDATE items SET qty = 44, note = 'updated' WHERE id = 4; DELETE FROM items WHERE id = 5");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal("(4,paris,44,updated)", await RowAsync(h, "lyon", 4));
        Assert.Null(await RowAsync(h, "lyon", 5));
        var missing = Assert.Single(await LogAsync(h, "lyon", 4));
        Assert.Equal(("update_missing", "applied_incoming"), Pick(missing));
        Assert.Null(missing.LocalOrigin);
        Assert.Equal(("delete_missing", "applied_incoming"), Pick(Assert.Single(await LogAsync(h, "lyon", 5))));
        Assert.Equal(1, await h["lyon"].ScalarAsync<long>("SELECT count(*) FROM navette.tombstone WHERE key = '[5]'"));
        await TableCompare.AssertIdenticalAsync(h["paris"], h["lyon"], "public.items", 9);
    }

    [Fact]
    public async Task Update_delete_and_delete_update_keep_the_later_update()
    {
        await using var h = await MeshAsync();
        await h["lyon"].ExecuteAsync("DELETE FROM items WHERE id = 6");
        await h["paris"].ExecuteAsync("UPDATE items SET note = 'kept' WHERE id = 6");
        // And the other way round: a later delete wins over an earlier update.
        await h["lyon"].ExecuteAsync("UPDATE items SET note = 'lost' WHERE id = 7");
        await h["paris"].ExecuteAsync("DELETE FROM items WHERE id = 7");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal("(6,paris,6,kept)", await RowAsync(h, "lyon", 6));
        Assert.Null(await RowAsync(h, "lyon", 7));
        Assert.Null(await RowAsync(h, "paris", 7));
        Assert.Equal(("update_delete", "applied_incoming"), Pick(Assert.Single(await LogAsync(h, "lyon", 6))));
        Assert.Equal(("delete_update", "kept_local"), Pick(Assert.Single(await LogAsync(h, "paris", 6))));
        Assert.Equal(("delete_update", "applied_incoming"), Pick(Assert.Single(await LogAsync(h, "lyon", 7))));
        Assert.Equal(("update_delete", "kept_local"), Pick(Assert.Single(await LogAsync(h, "paris", 7))));
        await TableCompare.AssertIdenticalAsync(h["paris"], h["lyon"], "public.items", 9);
    }

    [Fact]
    public async Task Priority_keeps_the_first_listed_node_even_when_it_wrote_first()
    {
        await using var h = await MeshAsync("priority\n    priority: [paris, lyon]\n    conflict_window: 1h");
        await h["paris"].ExecuteAsync("UPDATE items SET note = 'paris wins' WHERE id = 2");
        await h["lyon"].ExecuteAsync("UPDATE items SET note = 'lyon later' WHERE id = 2");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal("(2,paris,2,\"paris wins\")", await RowAsync(h, "lyon", 2));
        Assert.Equal("(2,paris,2,\"paris wins\")", await RowAsync(h, "paris", 2));
        Assert.Equal(("update_update", "applied_incoming"), Pick(Assert.Single(await LogAsync(h, "lyon", 2))));
        Assert.Equal(("update_update", "kept_local"), Pick(Assert.Single(await LogAsync(h, "paris", 2))));
    }

    [Fact]
    public async Task Priority_sends_the_winning_row_back_to_a_node_that_wrote_after_seeing_it()
    {
        await using var h = await MeshAsync("priority\n    priority: [paris, lyon]\n    conflict_window: 1h");
        // lyon changes a row paris wrote, after it arrived: within the window paris's version outranks it, and only a
        // re-send from paris can bring lyon back in line.
        h.StartDaemon();
        await h["lyon"].ExecuteAsync("UPDATE items SET note = 'lyon after paris' WHERE id = 8");
        await h.WaitCaughtUpAsync();

        Assert.Equal("(8,paris,8,start)", await RowAsync(h, "paris", 8));
        Assert.Equal("(8,paris,8,start)", await RowAsync(h, "lyon", 8));
        Assert.Equal(("update_update", "kept_local"), Pick(Assert.Single(await LogAsync(h, "paris", 8))));
        Assert.Equal(0, await h["paris"].ScalarAsync<long>("SELECT count(*) FROM navette.rebroadcast"));
    }

    [Fact]
    public async Task Custom_function_merges_both_inserts()
    {
        await using var h = await ReplicationHarness.StartAsync(output, "paris", "lyon");
        await h.OnAllAsync("""
            CREATE TABLE public.counters (id int PRIMARY KEY, n int NOT NULL);
            CREATE FUNCTION public.sum_counters(kind text, local jsonb, remote jsonb) RETURNS jsonb LANGUAGE sql AS $$
                SELECT CASE WHEN local IS NULL THEN remote WHEN remote IS NULL THEN local
                            ELSE jsonb_set(remote, '{n}', to_jsonb((local->>'n')::int + (remote->>'n')::int)) END
            $$;
            """);
        h.WriteConfig("""
            sets:
              counts:
                tables: [public.counters]
                mesh: [paris, lyon]
                conflicts: custom
                conflict_function: public.sum_counters
            """);
        await h.ApplyAsync();
        h.StartDaemon();
        await h.WaitCaughtUpAsync();
        await h.StopDaemonAsync();
        await h["paris"].ExecuteAsync("INSERT INTO counters VALUES (1, 5)");
        await h["lyon"].ExecuteAsync("INSERT INTO counters VALUES (1, 7)");
        h.StartDaemon();
        await h.WaitCaughtUpAsync();

        Assert.Equal(12, await h["paris"].ScalarAsync<int>("SELECT n FROM counters WHERE id = 1"));
        Assert.Equal(12, await h["lyon"].ScalarAsync<int>("SELECT n FROM counters WHERE id = 1"));
        Assert.Equal("merged", await h["lyon"].ScalarAsync<string>("SELECT outcome FROM navette.conflict_log WHERE conflict_type = 'insert_exists'"));
    }

    [Fact]
    public async Task Abort_stops_the_subscription_at_the_conflict_and_resumes_once_decided_with_nothing_lost()
    {
        await using var h = await MeshAsync("abort");
        await h["paris"].ExecuteAsync("UPDATE items SET note = 'paris' WHERE id = 9");
        await h["lyon"].ExecuteAsync("UPDATE items SET note = 'lyon' WHERE id = 9");
        // Written after the conflicting change: must not be applied on lyon before the conflict is decided.
        await h["paris"].ExecuteAsync("INSERT INTO items VALUES (200, 'paris', 1, 'after the conflict')");
        h.StartDaemon();

        var error = await Eventually.ValueAsync(() => NodeQueries.ErrorAsync(h["lyon"], "mesh_paris_lyon"), e => e is not null, TimeSpan.FromSeconds(60), "mesh_paris_lyon stops");
        Assert.Contains("update_update conflict on public.items key id=9", error);
        Assert.Contains("navette conflicts resolve", error);
        Assert.Null(await RowAsync(h, "lyon", 200));
        Assert.Equal("(9,paris,9,lyon)", await RowAsync(h, "lyon", 9));

        var report = new ConflictReport(h.Config);
        Assert.Equal(1, await report.ResolveAsync(null, null, "mesh_paris_lyon", "incoming", CancellationToken.None));
        await Eventually.TrueAsync(async () => await RowAsync(h, "lyon", 200) is not null, TimeSpan.FromSeconds(90), "lyon applies past the conflict");
        Assert.Equal("(9,paris,9,paris)", await RowAsync(h, "lyon", 9));
        Assert.Equal(("update_update", "resolved"), Pick((await LogAsync(h, "lyon", 9)).Single()));
    }

    private static (string, string) Pick((string Type, string Outcome, string? LocalOrigin, string RemoteOrigin, string Local, string Remote) e) => (e.Type, e.Outcome);
}
