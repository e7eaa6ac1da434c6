using System.Net;
using Navette.Cli.Demo;
using Navette.Processes;
using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Security;

/// <summary>
/// The roles docs/security.md describes, exactly: on the origin a REPLICATION login that owns nothing but the navette
/// schema and is a member of the tables' owner role (PostgreSQL 15 lets only a table's owner publish it); on the target
/// a role that is not a superuser, granted the replica role setting and the replication origin functions; every connection over TLS with sslmode=verify-full against a CA the test makes (the servers refuse
/// these roles without TLS), passwords from the conninfo (origin) and from PGPASSFILE (target), and none of them in
/// anything navette prints.
/// </summary>
public sealed class SecurityTests(ITestOutputHelper output)
{
    private const string Sub = "origin_to_target";
    private const string OriginRole = "navette_origin";
    private const string OriginPassword = "Or1gin-S3cret-word";
    private const string ApplyRole = "navette_apply";
    private const string ApplyPassword = "Appl1er-S3cret-word";

    /// <summary>ssl = on with a certificate for 127.0.0.1 and localhost; the role may only log in over TLS, with its password.</summary>
    private static async Task RequireTlsAsync(LocalCluster node, TestCertificates ca, string role)
    {
        ca.WriteServer(Path.Combine(node.DataDir, "server.crt"), Path.Combine(node.DataDir, "server.key"), "localhost", IPAddress.Loopback);
        await PosixUser.GiveToPostgresAsync(Path.Combine(node.DataDir, "server.crt"), CancellationToken.None);
        await PosixUser.GiveToPostgresAsync(Path.Combine(node.DataDir, "server.key"), CancellationToken.None);
        var hba = Path.Combine(node.DataDir, "pg_hba.conf");
        var rules = $"""
            hostnossl all {role} 0.0.0.0/0 reject
            hostnossl replication {role} 0.0.0.0/0 reject
            hostssl all {role} 127.0.0.1/32 scram-sha-256
            hostssl replication {role} 127.0.0.1/32 scram-sha-256

            """;
        await File.WriteAllTextAsync(hba, rules + await File.ReadAllTextAsync(hba));
        await node.ExecuteAsync("ALTER SYSTEM SET ssl = on");
        await node.ExecuteAsync("SELECT pg_reload_conf()");
    }

    [Fact]
    public async Task Least_privilege_roles_replicate_over_verify_full_tls_and_no_output_holds_a_password()
    {
        using var ca = new TestCertificates("navette-tests");
        await using var origin = await TestClusters.StartAsync("origin");
        await using var target = await TestClusters.StartAsync("target");
        var dir = Path.Combine(TestClusters.RootDir, "security-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var caPath = Path.Combine(dir, "ca.crt");
        ca.WriteCa(caPath);

        const string tables = """
            CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL);
            CREATE TABLE public.notes (id bigint PRIMARY KEY, body text);
            """;
        // Origin: the application's tables belong to app_owner; navette's login is a member of it (to publish them),
        // may stream (REPLICATION) and create its own schema (CREATE on the database). Nothing else.
        await origin.ExecuteAsync($"""
            CREATE ROLE app_owner NOLOGIN;
            {tables}
            ALTER TABLE public.items OWNER TO app_owner;
            ALTER TABLE public.notes OWNER TO app_owner;
            SET password_encryption = 'scram-sha-256';
            CREATE ROLE {OriginRole} LOGIN REPLICATION PASSWORD '{OriginPassword}';
            GRANT app_owner TO {OriginRole};
            GRANT CREATE ON DATABASE postgres TO {OriginRole};
            INSERT INTO public.items SELECT g, 'item ' || g, g FROM generate_series(1, 500) g;
            """);
        // Target: not a superuser. The apply needs the replica role (SET on session_replication_role, grantable since
        // PostgreSQL 15), the replication origin functions, the tables' owner rights (membership) and its own schema.
        await target.ExecuteAsync($"""
            CREATE ROLE app_owner NOLOGIN;
            {tables}
            ALTER TABLE public.items OWNER TO app_owner;
            ALTER TABLE public.notes OWNER TO app_owner;
            SET password_encryption = 'scram-sha-256';
            CREATE ROLE {ApplyRole} LOGIN PASSWORD '{ApplyPassword}';
            GRANT app_owner TO {ApplyRole};
            GRANT CREATE ON DATABASE postgres TO {ApplyRole};
            GRANT CREATE ON SCHEMA public TO {ApplyRole};
            GRANT SET ON PARAMETER session_replication_role TO {ApplyRole};
            GRANT EXECUTE ON FUNCTION {string.Join(", ", Navette.Setup.NodeInspector.ApplyFunctions.Select(f => "pg_catalog." + f))} TO {ApplyRole};
            """);
        Assert.False(await target.ScalarAsync<bool>($"SELECT rolsuper FROM pg_roles WHERE rolname = '{ApplyRole}'"));
        await RequireTlsAsync(origin, ca, OriginRole);
        await RequireTlsAsync(target, ca, ApplyRole);

        // The target's password comes from a password file, the origin's from its conninfo.
        var passfile = Path.Combine(dir, "pgpass");
        await File.WriteAllTextAsync(passfile, $"127.0.0.1:{target.Port}:postgres:{ApplyRole}:{ApplyPassword}\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(passfile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var env = new Dictionary<string, string> { ["PGPASSFILE"] = passfile };
        var config = Path.Combine(dir, "navette.yaml");
        await File.WriteAllTextAsync(config, $$"""
            nodes:
              origin: { conninfo: "host=127.0.0.1 port={{origin.Port}} dbname=postgres user={{OriginRole}} password={{OriginPassword}} sslmode=verify-full sslrootcert={{caPath}}" }
              target: { conninfo: "host=127.0.0.1 port={{target.Port}} dbname=postgres user={{ApplyRole}} sslmode=verify-full sslrootcert={{caPath}}" }
            sets:
              shop: { tables: [public.items, public.notes] }
            subscriptions:
              {{Sub}}: { from: origin, to: target, sets: [shop] }
            """);
        var printed = new List<string>();
        void Keep(CliResult r) { printed.Add(r.StdOut); printed.Add(r.StdErr); }

        var apply = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(90), env, "apply", "-c", config, "-v");
        Keep(apply);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        await using (var daemon = NavetteProcess.Start(output, "daemon", env, "run", "-c", config, "-v"))
        {
            await Eventually.TrueAsync(async () => await NodeQueries.StateAsync(target, Sub) == "streaming", TimeSpan.FromSeconds(90), "streaming");
            await origin.ExecuteAsync("""
                INSERT INTO public.notes SELECT g, repeat('note ', g % 50) FROM generate_series(1, 300) g;
                UPDATE public.items SET qty = qty * 2 WHERE id % 3 = 0;
                DELETE FROM public.items WHERE id % 10 = 0;
                """);
            var wait = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(120), env, "wait", "-c", config, "--timeout", "100");
            Keep(wait);
            Assert.True(wait.ExitCode == 0, wait.ToString());
            await TableCompare.AssertIdenticalAsync(origin, target, "public.items", 450);
            await TableCompare.AssertIdenticalAsync(origin, target, "public.notes", 300);

            // Every session of navette's roles is encrypted: the walsender and catalog sessions on the origin, the apply on the target.
            var originSessions = await origin.ScalarAsync<long>($"SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{OriginRole}' AND s.ssl");
            var plainOrigin = await origin.ScalarAsync<long>($"SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{OriginRole}' AND NOT s.ssl");
            var walsenders = await origin.ScalarAsync<long>($"SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.usename = '{OriginRole}' AND s.ssl");
            var applySessions = await target.ScalarAsync<long>($"SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '{ApplyRole}' AND s.ssl");
            output.WriteLine($"TLS sessions: origin {originSessions} (walsenders {walsenders}, plain {plainOrigin}), target {applySessions}");
            Assert.True(walsenders >= 1 && plainOrigin == 0 && applySessions >= 1);

            var status = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), env, "status", "-c", config);
            Keep(status);
            Assert.Contains("streaming", status.StdOut);
            daemon.Terminate();
            Assert.Equal(0, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            printed.Add(daemon.StdOut);
            printed.Add(daemon.StdErr);
        }

        // Without the password file the target refuses, and the error names the node, not the secret.
        var noPassword = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), "status", "-c", config);
        Keep(noPassword);
        Assert.Contains("target", noPassword.StdOut + noPassword.StdErr);
        // A CA that did not sign the servers' certificates is refused under verify-full.
        using var other = new TestCertificates("someone else");
        var otherCa = Path.Combine(dir, "other-ca.crt");
        other.WriteCa(otherCa);
        var wrongCaConfig = Path.Combine(dir, "wrong-ca.yaml");
        await File.WriteAllTextAsync(wrongCaConfig, (await File.ReadAllTextAsync(config)).Replace(caPath, otherCa, StringComparison.Ordinal));
        var wrongCa = await NavetteProcess.RunAsync(output, TimeSpan.FromSeconds(60), env, "apply", "-c", wrongCaConfig);
        Keep(wrongCa);
        Assert.True(wrongCa.ExitCode != 0, wrongCa.ToString());
        Assert.Contains("node origin", wrongCa.StdOut + wrongCa.StdErr);

        var all = string.Join('\n', printed);
        foreach (var secret in new[] { OriginPassword, ApplyPassword })
        {
            var offending = all.Split('\n').Where(l => l.Contains(secret, StringComparison.Ordinal)).ToList();
            Assert.True(offending.Count == 0, $"{offending.Count} line(s) contain a password, e.g. {offending.FirstOrDefault()}");
        }
        output.WriteLine($"checked {all.Split('\n').Length} lines of output: no password");
    }
}
