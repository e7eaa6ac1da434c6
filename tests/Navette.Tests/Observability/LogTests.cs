using System.Text.Json;
using Navette.Cli.Demo;
using Navette.Tests.Infrastructure;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Observability;

/// <summary>What the daemon and the commands print: JSON lines on request, and never a password.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class LogTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_replica";
    private const string Role = "navette_pw";
    private const string Password = "Zq7-secret-Pa55word";

    /// <summary>A role that must log in with its password (scram), over TCP and for replication too.</summary>
    private static async Task RequirePasswordAsync(LocalCluster node)
    {
        await node.ExecuteAsync($"CREATE ROLE {Role} LOGIN SUPERUSER REPLICATION PASSWORD '{Password}'");
        var hba = Path.Combine(node.DataDir, "pg_hba.conf");
        var rules = $"host all {Role} 127.0.0.1/32 scram-sha-256\nhost replication {Role} 127.0.0.1/32 scram-sha-256\n";
        await File.WriteAllTextAsync(hba, rules + await File.ReadAllTextAsync(hba));
        await node.ExecuteAsync("SELECT pg_reload_conf()");
    }

    [Fact]
    public async Task Json_logs_parse_and_no_output_ever_contains_the_password()
    {
        await using var origin = await TestClusters.StartAsync("origin");
        await using var replica = await TestClusters.StartAsync("replica");
        foreach (var node in new[] { origin, replica })
        {
            await node.ExecuteAsync("CREATE TABLE public.items (id int PRIMARY KEY, payload text NOT NULL)");
            await RequirePasswordAsync(node);
        }
        await origin.ExecuteAsync("INSERT INTO items SELECT g, 'seed' FROM generate_series(1, 200) g");
        // The role really needs its password: without it the server refuses.
        await using (var noPassword = new NpgsqlConnection($"Host=127.0.0.1;Port={origin.Port};Username={Role};Database=postgres;Pooling=false"))
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => noPassword.OpenAsync());

        var config = Path.Combine(TestClusters.RootDir, $"password-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(config, $$"""
            nodes:
              origin: { conninfo: "host=127.0.0.1 port={{origin.Port}} dbname=postgres user={{Role}} password={{Password}}" }
              replica: { conninfo: "postgresql://{{Role}}:{{Password}}@127.0.0.1:{{replica.Port}}/postgres" }
            sets:
              shop: { tables: [public.items] }
            subscriptions:
              {{Sub}}: { from: origin, to: replica, sets: [shop] }
            """);
        var printed = new List<string>();
        void Keep(CliResult r) { printed.Add(r.StdOut); printed.Add(r.StdErr); }

        var apply = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(90), "apply", "-c", config, "--log-format", "json", "-v");
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Keep(apply);
        await using (var daemon = await MonitoredDaemon.StartAsync(output, config, null, "--log-format", "json", "-v"))
        {
            await Eventually.TrueAsync(async () => (await NodeQueries.StateAsync(replica, Sub)) == "streaming", TimeSpan.FromSeconds(90), "streaming");
            await origin.ExecuteAsync("INSERT INTO items SELECT g, 'more' FROM generate_series(201, 300) g");
            // Failures get logged with their causes: the replica goes away for a while.
            await replica.StopAsync();
            await Eventually.TrueAsync(() => Task.FromResult(daemon.Process.Printed("failed")), TimeSpan.FromSeconds(60), "a failure to be logged");
            var status = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "-c", config);
            Assert.Contains("unreachable", status.StdOut);
            Keep(status);
            foreach (var path in new[] { "api/status", "api/dashboard", "metrics", "health" })
                printed.Add((await daemon.GetTextAsync(path)).Body);
            await replica.StartAsync();
            var wait = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(120), "wait", "-c", config, "--timeout", "100");
            Assert.True(wait.ExitCode == 0, wait.ToString());
            Keep(wait);
            Assert.Equal(300, await NodeQueries.CountAsync(replica, "items"));

            daemon.Process.Terminate();
            Assert.Equal(0, await daemon.Process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            var lines = daemon.Process.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length > 10, $"expected the daemon's log lines, got {lines.Length}");
            foreach (var line in lines)
            {
                using var json = JsonDocument.Parse(line);
                Assert.True(json.RootElement.TryGetProperty("Timestamp", out _), line);
                Assert.True(json.RootElement.TryGetProperty("LogLevel", out _), line);
                Assert.True(json.RootElement.TryGetProperty("Message", out _), line);
            }
            Assert.Contains(lines, l => l.Contains("\"LogLevel\":\"Error\"", StringComparison.Ordinal));
            printed.Add(daemon.Process.StdOut);
            printed.Add(daemon.Process.StdErr);
        }

        // A wrong password is reported without being repeated.
        var wrong = config + ".wrong.yaml";
        await File.WriteAllTextAsync(wrong, (await File.ReadAllTextAsync(config)).Replace(Password, Password + "-wrong", StringComparison.Ordinal));
        var refused = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "-c", wrong);
        Assert.Contains("password authentication failed", refused.StdOut + refused.StdErr);
        Keep(refused);

        var all = string.Join('\n', printed);
        var offending = all.Split('\n').Where(l => l.Contains(Password, StringComparison.Ordinal)).ToList();
        Assert.True(offending.Count == 0, $"{offending.Count} line(s) contain the password, e.g. {offending.FirstOrDefault()}");
        output.WriteLine($"checked {all.Split('\n').Length} lines of output: no password");
    }
}
