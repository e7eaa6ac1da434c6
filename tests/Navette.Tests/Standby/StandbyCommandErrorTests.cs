using Navette.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Standby;

/// <summary>
/// The standby commands refuse what cannot work before they touch any server, saying what to change; the nodes here
/// point at a port nothing listens on, so any attempt to connect would show as a different error.
/// </summary>
public sealed class StandbyCommandErrorTests : IDisposable
{
    private static readonly TimeSpan CliTimeout = TimeSpan.FromSeconds(60);
    private readonly ITestOutputHelper _output;
    private readonly string _dir = Directory.CreateTempSubdirectory("navette-standby-cli-").FullName;
    private readonly string _config;
    private readonly string _text = """
        nodes:
          paris: { conninfo: "host=127.0.0.1 port=1 dbname=shop user=postgres" }
          lyon: { conninfo: "host=127.0.0.1 port=2 dbname=shop user=postgres" }
        sets:
          shop: { tables: [public.orders] }
        subscriptions:
          paris_to_lyon: { from: paris, to: lyon, sets: [shop] }
        standbys:
          s1: { from: paris, pgdata: /srv/s1, port: 5440, mode: streaming }

        """;

    public StandbyCommandErrorTests(ITestOutputHelper output)
    {
        _output = output;
        _config = Path.Combine(_dir, "navette.yaml");
        File.WriteAllText(_config, _text);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<string> FailsAsync(params string[] args)
    {
        var result = await NavetteProcess.RunAsync(_output, CliTimeout, [.. args, "-c", _config]);
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Equal(_text, File.ReadAllText(_config));
        return result.StdErr;
    }

    [Fact]
    public async Task Create_refuses_a_data_directory_in_use_an_unknown_node_and_a_taken_name()
    {
        var used = Path.Combine(_dir, "used");
        Directory.CreateDirectory(used);
        File.WriteAllText(Path.Combine(used, "PG_VERSION"), "15\n");

        Assert.Contains($"--pgdata {used} is not empty; give a new or empty directory",
            await FailsAsync("standby", "create", "--from", "paris", "--name", "s2", "--pgdata", used, "--port", "5441", "--mode", "streaming"));
        Assert.Contains("unknown node 'pariss' in --from; nodes in", await FailsAsync("standby", "create", "--from", "pariss", "--name", "s2",
            "--pgdata", Path.Combine(_dir, "new"), "--port", "5441", "--mode", "streaming"));
        Assert.Contains("standby 's1' already exists in", await FailsAsync("standby", "create", "--from", "paris", "--name", "s1",
            "--pgdata", Path.Combine(_dir, "new"), "--port", "5441", "--mode", "streaming"));
        Assert.Contains("port 5440 on 127.0.0.1 is already the port of standby 's1'", await FailsAsync("standby", "create", "--from", "paris", "--name", "s2",
            "--pgdata", Path.Combine(_dir, "new"), "--port", "5440", "--mode", "streaming"));
        Assert.Contains("--mode archive needs --archive DIR", await FailsAsync("standby", "create", "--from", "paris", "--name", "s2",
            "--pgdata", Path.Combine(_dir, "new"), "--port", "5441", "--mode", "archive"));
        Assert.False(Directory.Exists(Path.Combine(_dir, "new")));
    }

    [Fact]
    public async Task Rewind_refuses_a_node_that_subscriptions_use_and_promote_an_unknown_standby()
    {
        Assert.Contains("node paris is used by subscriptions paris_to_lyon; as a standby it could neither publish nor apply changes",
            await FailsAsync("standby", "rewind", "paris", "--from", "lyon"));
        Assert.Contains("'s1' is already a standby", await FailsAsync("standby", "rewind", "s1", "--from", "lyon"));
        Assert.Contains("unknown standby 's2'; standbys in", await FailsAsync("standby", "promote", "s2"));
        Assert.Contains("'paris' is a node in", await FailsAsync("standby", "promote", "paris"));
    }
}
