using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.BadInput;

/// <summary>
/// Input navette cannot apply: a target whose table, column type, column length or constraint no longer fits the
/// origin's rows, and conninfos with a wrong password or host. Each stops only its own subscription with an error that
/// says what to fix, loses nothing, lets the other subscription into the same node go on, and once fixed resumes at
/// exactly the transaction it stopped at (row comparisons before and after the fix).
/// </summary>
public sealed class BadInputTests(ITestOutputHelper output)
{
    private const string Bad = "shop_to_report";
    private const string Good = "crm_to_report";
    private const string Orders = "CREATE TABLE public.orders (id int PRIMARY KEY, amount int NOT NULL, code varchar(50), note text);";
    private const string Contacts = "CREATE TABLE public.contacts (id int PRIMARY KEY, name text);";

    private static string Topology(string? shopConnInfo = null) => $$"""
        sets:
          orders: { tables: [public.orders] }
          contacts: { tables: [public.contacts] }
        subscriptions:
          {{Bad}}: { from: shop, to: report, sets: [orders] }
          {{Good}}: { from: crm, to: report, sets: [contacts] }
        """;

    private async Task<ReplicationHarness> StartAsync(bool followConfig = false)
    {
        var h = await ReplicationHarness.StartAsync(output, "shop", "crm", "report");
        await h["shop"].ExecuteAsync(Orders);
        await h["crm"].ExecuteAsync(Contacts);
        await h["report"].ExecuteAsync(Orders + Contacts);
        await h["shop"].ExecuteAsync("INSERT INTO orders SELECT g, g, 'c' || g, g::text FROM generate_series(1, 100) g");
        await h["crm"].ExecuteAsync("INSERT INTO contacts SELECT g, 'c' || g FROM generate_series(1, 50) g");
        h.WriteConfig(Topology());
        await h.ApplyAsync();
        h.StartDaemon(followConfig);
        await h.WaitCaughtUpAsync();
        return h;
    }

    /// <summary>
    /// 20 good transactions, the bad one (order 121), 20 more, an update of an early row: the subscription must stop
    /// with an error containing <paramref name="expected"/>, holding exactly orders 1..120; the other subscription goes
    /// on; after <paramref name="fix"/> the report holds every order.
    /// </summary>
    private async Task StopsThenResumesAsync(ReplicationHarness h, string badRow, string[] expected, Func<LocalCluster, Task> fix)
    {
        for (var i = 101; i <= 120; i++) await h["shop"].ExecuteAsync($"INSERT INTO orders VALUES ({i}, {i}, 'c{i}', '{i}')");
        await h["shop"].ExecuteAsync($"INSERT INTO orders VALUES {badRow}");
        for (var i = 122; i <= 140; i++) await h["shop"].ExecuteAsync($"INSERT INTO orders VALUES ({i}, {i}, 'c{i}', '{i}')");
        await h["shop"].ExecuteAsync("UPDATE orders SET amount = amount + 1000 WHERE id <= 5");

        var failed = await Eventually.ValueAsync(() => NodeQueries.SubscriptionAsync(h["report"], Bad),
            s => s?.State == "failed" && expected.All(x => s.Error?.Contains(x, StringComparison.Ordinal) == true),
            TimeSpan.FromSeconds(60), $"{Bad} to fail with an error containing [{string.Join(" | ", expected)}]");
        output.WriteLine("error: " + failed!.Error);
        Assert.DoesNotContain("password=", failed.Error!.Replace("password=********", "", StringComparison.Ordinal), StringComparison.Ordinal);

        // Stopped exactly before order 121: the 120 before it, as on the shop, and nothing after.
        await Eventually.TrueAsync(async () => await h["report"].ScalarAsync<long>("SELECT count(*) FROM orders") == 120,
            TimeSpan.FromSeconds(30), "the transactions before the refused one");
        await TableCompare.AssertIdenticalAsync(h["shop"], h["report"], "(SELECT id, amount, code, note::text FROM public.orders WHERE id <= 120 AND id > 5)", 115);
        Assert.Equal(0, await h["report"].ScalarAsync<long>("SELECT count(*) FROM orders WHERE id > 120 OR amount > 1000"));

        await OtherSubscriptionKeepsGoingAsync(h);
        await Task.Delay(2000);
        Assert.Equal("failed", await NodeQueries.StateAsync(h["report"], Bad));

        await fix(h["report"]);
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(h["shop"], h["report"], "public.orders", 140);
        await TableCompare.AssertIdenticalAsync(h["crm"], h["report"], "public.contacts", 50);
        var resumed = await NodeQueries.SubscriptionAsync(h["report"], Bad);
        Assert.Equal("streaming", resumed!.State);
        Assert.Null(resumed.Error);
    }

    private static int s_contact = 1000;

    private static async Task OtherSubscriptionKeepsGoingAsync(ReplicationHarness h)
    {
        var first = Interlocked.Add(ref s_contact, 100);
        await h["crm"].ExecuteAsync($"INSERT INTO contacts SELECT g, 'while stopped ' || g FROM generate_series({first}, {first + 99}) g");
        await Eventually.TrueAsync(async () => await h["report"].ScalarAsync<long>($"SELECT count(*) FROM contacts WHERE id BETWEEN {first} AND {first + 99}") == 100,
            TimeSpan.FromSeconds(30), $"{Good} to keep applying while {Bad} is stopped");
        Assert.Equal("streaming", await NodeQueries.StateAsync(h["report"], Good));
    }

    [Fact]
    public async Task Type_mismatch_names_the_column_and_both_types()
    {
        await using var h = await StartAsync();
        // The report's note became an integer after apply checked it; numbers still go in, words do not.
        await h["report"].ExecuteAsync("ALTER TABLE orders ALTER COLUMN note TYPE integer USING note::integer");
        await StopsThenResumesAsync(h, "(121, 121, 'c121', 'not a number')",
            ["public.orders", "id=121", "22P02", "column note is text on the origin but integer on the target"],
            report => report.ExecuteAsync("ALTER TABLE orders ALTER COLUMN note TYPE text"));
    }

    [Fact]
    public async Task Row_too_large_for_a_target_column_names_the_column_and_its_length()
    {
        await using var h = await StartAsync();
        await h["report"].ExecuteAsync("UPDATE orders SET code = left(code, 5); ALTER TABLE orders ALTER COLUMN code TYPE varchar(5)");
        await h["shop"].ExecuteAsync("UPDATE orders SET code = left(code, 5)");
        await StopsThenResumesAsync(h, "(121, 121, 'much longer than five', '121')",
            ["public.orders", "id=121", "22001", "column code is character varying(50) on the origin but character varying(5) on the target"],
            report => report.ExecuteAsync("ALTER TABLE orders ALTER COLUMN code TYPE varchar(50)"));
    }

    [Fact]
    public async Task Replica_constraint_rejecting_a_row_names_the_constraint_and_key()
    {
        await using var h = await StartAsync();
        await h["report"].ExecuteAsync("CREATE UNIQUE INDEX report_unique_code ON orders (code)");
        await StopsThenResumesAsync(h, "(121, 121, 'c7', '121')",
            ["public.orders", "id=121", "23505", "report_unique_code", "Key (code)=(c7) already exists"],
            report => report.ExecuteAsync("DROP INDEX report_unique_code"));
    }

    [Fact]
    public async Task Unknown_table_on_the_target_says_to_create_it()
    {
        await using var h = await StartAsync();
        // Someone renamed the report's table: the origin's orders have nowhere to go.
        await h["report"].ExecuteAsync("ALTER TABLE orders RENAME TO orders_old");
        for (var i = 101; i <= 120; i++) await h["shop"].ExecuteAsync($"INSERT INTO orders VALUES ({i}, {i}, 'c{i}', '{i}')");
        var failed = await Eventually.ValueAsync(() => NodeQueries.SubscriptionAsync(h["report"], Bad),
            s => s?.State == "failed" && s.Error?.Contains("public.orders", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(60), $"{Bad} to fail naming the table");
        output.WriteLine("error: " + failed!.Error);
        Assert.Contains("does not exist on the target; create it", failed.Error);
        Assert.Equal(100, await h["report"].ScalarAsync<long>("SELECT count(*) FROM orders_old"));
        await OtherSubscriptionKeepsGoingAsync(h);

        await h["report"].ExecuteAsync("ALTER TABLE orders_old RENAME TO orders");
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(h["shop"], h["report"], "public.orders", 120);
        Assert.Equal("streaming", await NodeQueries.StateAsync(h["report"], Bad));
    }

    [Fact]
    public async Task Wrong_password_then_wrong_host_name_the_node_and_resume_once_the_file_is_fixed()
    {
        const string role = "shop_login";
        const string password = "Right-Pa55-word";
        await using var h = await StartAsync(followConfig: true);
        var shop = h["shop"];
        await shop.ExecuteAsync($"CREATE ROLE {role} LOGIN SUPERUSER REPLICATION PASSWORD '{password}'");
        var hba = Path.Combine(shop.DataDir, "pg_hba.conf");
        await File.WriteAllTextAsync(hba, $"host all {role} 127.0.0.1/32 scram-sha-256\nhost replication {role} 127.0.0.1/32 scram-sha-256\n" + await File.ReadAllTextAsync(hba));
        await shop.ExecuteAsync("SELECT pg_reload_conf()");
        var good = File.ReadAllText(h.ConfigPath);
        var shopConnInfo = shop.ConnInfo;

        async Task BreakAsync(string conninfo, string[] expected, int from)
        {
            File.WriteAllText(h.ConfigPath, good.Replace($"\"{shopConnInfo}\"", $"\"{conninfo}\"", StringComparison.Ordinal));
            var failed = await Eventually.ValueAsync(() => NodeQueries.SubscriptionAsync(h["report"], Bad),
                s => s?.State == "failed" && expected.All(x => s.Error?.Contains(x, StringComparison.Ordinal) == true),
                TimeSpan.FromSeconds(60), $"{Bad} to fail with [{string.Join(" | ", expected)}]");
            output.WriteLine("error: " + failed!.Error);
            // The shop goes on taking orders while navette cannot read them.
            await shop.ExecuteAsync($"INSERT INTO orders SELECT g, g, 'c' || g, g::text FROM generate_series({from}, {from + 49}) g");
            await Task.Delay(1500);
            Assert.DoesNotContain("Wrong-Pa55", failed.Error, StringComparison.Ordinal);
            Assert.DoesNotContain(password, failed.Error, StringComparison.Ordinal);
            Assert.Equal(from - 1, await h["report"].ScalarAsync<long>("SELECT count(*) FROM orders"));
            await OtherSubscriptionKeepsGoingAsync(h);
        }

        await BreakAsync(shopConnInfo.Replace("user=postgres", $"user={role} password=Wrong-Pa55-word", StringComparison.Ordinal),
            ["cannot connect to node shop", "password=********", "28P01", $"password authentication failed for user \"{role}\"", "fix the user or password"], 101);
        // The operator puts the right password in: it resumes where it stopped.
        File.WriteAllText(h.ConfigPath, good.Replace($"\"{shopConnInfo}\"", $"\"{shopConnInfo.Replace("user=postgres", $"user={role} password={password}", StringComparison.Ordinal)}\"", StringComparison.Ordinal));
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(shop, h["report"], "public.orders", 150);

        await BreakAsync(shopConnInfo.Replace("host=127.0.0.1", "host=127.0.0.2", StringComparison.Ordinal) + " connect_timeout=3",
            ["cannot connect to node shop", "host=127.0.0.2", "check that the node is up and that its conninfo"], 151);
        File.WriteAllText(h.ConfigPath, good);
        await h.WaitCaughtUpAsync(120);
        await TableCompare.AssertIdenticalAsync(shop, h["report"], "public.orders", 200);
        await TableCompare.AssertIdenticalAsync(h["crm"], h["report"], "public.contacts", 50);
        Assert.Equal("streaming", await NodeQueries.StateAsync(h["report"], Bad));
    }

    [Fact]
    public async Task Invalid_yaml_is_refused_with_its_line_and_a_running_daemon_keeps_the_last_valid_file()
    {
        await using var h = await StartAsync();
        await h.StopDaemonAsync();
        var good = File.ReadAllText(h.ConfigPath);
        var broken = good.Replace("orders: { tables: [public.orders] }", "orders: { tables: [public.orders }", StringComparison.Ordinal);
        var line = broken.Split('\n').ToList().FindIndex(l => l.Contains("[public.orders }", StringComparison.Ordinal)) + 1;
        var brokenPath = h.ConfigPath + ".broken.yaml";
        File.WriteAllText(brokenPath, broken);
        foreach (var command in new[] { "apply", "run", "status" })
        {
            var refused = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), command, "-c", brokenPath);
            Assert.True(refused.ExitCode != 0, refused.ToString());
            Assert.Contains($"{brokenPath}:", refused.StdErr);
            Assert.Contains("YAML syntax error", refused.StdErr);
            Assert.Matches($@":({line}|{line + 1}):", refused.StdErr);
        }

        // A running daemon whose file is broken under it keeps the last valid version, says so, and follows the fix.
        await using var daemon = NavetteProcess.StartDaemon(output, h.ConfigPath);
        await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(h["report"], Bad) == "streaming", TimeSpan.FromSeconds(60), "streaming");
        File.WriteAllText(h.ConfigPath, broken);
        Assert.True(await daemon.WaitForOutputAsync("is not valid; the workers keep running the previous version", TimeSpan.FromSeconds(30)));
        await h["shop"].ExecuteAsync("INSERT INTO orders SELECT g, g, 'c' || g, g::text FROM generate_series(101, 200) g");
        await OtherSubscriptionKeepsGoingAsync(h);
        await Eventually.TrueAsync(async () => await h["report"].ScalarAsync<long>("SELECT count(*) FROM orders") == 200, TimeSpan.FromSeconds(30), "orders applied");
        File.WriteAllText(h.ConfigPath, good);
        await h.WaitCaughtUpAsync();
        await TableCompare.AssertIdenticalAsync(h["shop"], h["report"], "public.orders", 200);
        daemon.Terminate();
        Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }
}
