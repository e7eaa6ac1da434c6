using Navette.Config;
using Navette.Tests.Config;
using Xunit;

namespace Navette.Tests.Standby;

/// <summary>The <c>standbys</c> section: validation with lines, and the edits navette makes to the file.</summary>
public class StandbyConfigTests
{
    private const string File = ConfigLoaderTests.File;

    private const string Nodes = """
        nodes:
          paris: { conninfo: "host=127.0.0.1 port=5432 dbname=shop user=postgres" }
          lyon: { conninfo: "host=127.0.0.1 port=5433 dbname=shop user=postgres" }

        """;

    private static IReadOnlyList<ConfigError> Errors(string yaml) => ConfigLoaderTests.Errors(yaml);

    private static void AssertError(string yaml, int line, string message) => ConfigLoaderTests.AssertError(yaml, line, message);

    [Fact]
    public void Standbys_are_read_with_their_defaults()
    {
        var config = ConfigLoader.Parse(Nodes + """
            standbys:
              hot1:
                from: paris
                pgdata: /var/lib/postgresql/hot1/
                port: 5434
                mode: streaming
                hot: true
                slot: true
              warm1: { from: paris, pgdata: /srv/warm1, port: 5435, mode: archive, archive: /srv/archive, delay: 5 min }
            """, File);

        Assert.Equal(
            new StandbyConfig("hot1", "paris", "/var/lib/postgresql/hot1", 5434, "127.0.0.1", StandbyMode.Streaming, Hot: true, Slot: true, null, null, 5),
            config.Standbys["hot1"]);
        Assert.Equal(
            new StandbyConfig("warm1", "paris", "/srv/warm1", 5435, "127.0.0.1", StandbyMode.Archive, Hot: false, Slot: false, "/srv/archive", "5min", 12),
            config.Standbys["warm1"]);
        Assert.Equal("navette_standby_hot1", config.Standbys["hot1"].SlotName);
    }

    [Fact]
    public void Missing_and_mistyped_keys_are_reported_with_their_lines()
    {
        var errors = Errors(Nodes + """
            standbys:
              s1:
                from: pariss
                pgdata: relative/dir
                port: 70000
                mode: stream
                hot: yes
                delay: soon
                slots: true
              s2: { from: paris, port: 5440 }
            """);
        Assert.Equal([
            (6, "standby 's1': unknown node 'pariss' in 'from'; defined nodes: paris, lyon; did you mean 'paris'?"),
            (7, "standby 's1': 'pgdata' must be an absolute path, not 'relative/dir'"),
            (8, "standby 's1': 'port' must be an integer from 1 to 65535, not '70000'"),
            (9, "standby 's1': 'mode' must be streaming or archive, not 'stream'"),
            (10, "standby 's1': 'hot' must be true or false, not 'yes' (only YAML 1.2 booleans are accepted)"),
            (11, "standby 's1': 'delay' 'soon' is not a duration; write a whole number with a unit: ms, s, min, h or d (e.g. 30s, 5min)"),
            (12, "unknown key 'slots' in standby 's1'; allowed: from, pgdata, port, host, mode, hot, slot, archive, delay; did you mean 'slot'?"),
            (13, "standby 's2': 'mode' is required (streaming or archive)"),
            (13, "standby 's2': 'pgdata' is required"),
        ], errors.Select(e => (e.Line, e.Message)).OrderBy(e => e.Line).ThenBy(e => e.Message, StringComparer.Ordinal));
    }

    [Fact]
    public void Archive_mode_needs_an_archive_and_no_slot()
    {
        var errors = Errors(Nodes + """
            standbys:
              w1:
                from: paris
                pgdata: /srv/w1
                port: 5440
                mode: archive
                slot: true
            """);
        Assert.Equal([
            (5, "standby 'w1': 'archive' is required"),
            (10, "standby 'w1': 'slot' needs mode streaming (a slot nobody streams from keeps the primary's WAL forever)"),
        ], errors.Select(e => (e.Line, e.Message)));
    }

    [Fact]
    public void Standby_names_paths_and_ports_must_not_collide()
    {
        var errors = Errors(Nodes + """
            standbys:
              lyon: { from: paris, pgdata: /srv/a, port: 5440, mode: streaming }
              b: { from: paris, pgdata: /srv/a/inner, port: 5440, mode: streaming }
              c: { from: b, pgdata: /srv/c, port: 5441, mode: archive, archive: /srv/c/wal }
            """);
        Assert.Equal([
            (5, "standby 'lyon' has the name of node 'lyon' (line 3); node and standby names must differ (a promoted standby becomes a node of the same name)"),
            (6, "standby 'b': 'pgdata' /srv/a/inner overlaps the data directory of standby 'lyon' (line 5)"),
            (6, "standby 'b': port 5440 on 127.0.0.1 is already the port of standby 'lyon' (line 5)"),
            (7, "standby 'c': 'b' in 'from' is a standby (line 6), not a node; a standby follows a node (cascading standbys are not supported): use 'paris'"),
            (7, "standby 'c': 'archive' must be outside 'pgdata' (/srv/c)"),
        ], errors.Select(e => (e.Line, e.Message)));
    }

    [Fact]
    public void A_subscription_cannot_use_a_standby()
    {
        AssertError(Nodes + """
            sets:
              shop: { tables: [public.orders] }
            standbys:
              s1: { from: paris, pgdata: /srv/s1, port: 5440, mode: streaming }
            subscriptions:
              paris_to_s1: { from: paris, to: s1, sets: [shop] }
            """, 9,
            "subscription 'paris_to_s1': 's1' in 'to' is a standby (line 7), not a node; a standby only replays its primary's WAL (promote it first: navette standby promote s1)");
    }

    [Fact]
    public void Adding_a_standby_keeps_every_other_line_of_the_file()
    {
        var text = "# shop replication\n" + Nodes + "sets:   # the tables\n  shop: { tables: [public.orders] }   # orders only\n";
        var standby = new StandbyConfig("s1", "paris", "/srv/my standby", 5440, "127.0.0.1", StandbyMode.Archive, true, false, "/srv/archive", "30s", 0);

        var edited = ConfigFileEditor.SetStandby(text, File, standby);

        Assert.StartsWith(text, edited);
        Assert.Equal("""
            standbys:
              s1:
                from: paris
                pgdata: "/srv/my standby"
                port: 5440
                mode: archive
                hot: true
                archive: /srv/archive
                delay: 30s

            """, edited[text.Length..]);
        Assert.Equal(standby with { Line = 8 }, ConfigLoader.Parse(edited, File).Standbys["s1"]);
    }

    [Fact]
    public void Replacing_and_removing_entries_touch_only_their_lines()
    {
        var text = Nodes + """
            standbys:
              # the first one
              s1: { from: paris, pgdata: /srv/s1, port: 5440, mode: streaming }   # hot later
              s2:
                from: lyon
                pgdata: /srv/s2
                port: 5441
                mode: streaming

            # trailing comment
            """;
        var s1 = new StandbyConfig("s1", "lyon", "/srv/s1", 5440, "10.0.0.5", StandbyMode.Streaming, true, true, null, null, 0);

        var replaced = ConfigFileEditor.SetStandby(text, File, s1);
        Assert.Equal(text.Replace("  s1: { from: paris, pgdata: /srv/s1, port: 5440, mode: streaming }   # hot later\n", """
              s1:
                from: lyon
                pgdata: /srv/s1
                port: 5440
                host: 10.0.0.5
                mode: streaming
                hot: true
                slot: true

            """), replaced);

        var promoted = ConfigFileEditor.SetNode(ConfigFileEditor.RemoveStandby(text, File, "s2"), File, "s2", "host=127.0.0.1 port=5441 dbname=shop user=postgres");
        Assert.Equal(text
            .Replace("  lyon: { conninfo: \"host=127.0.0.1 port=5433 dbname=shop user=postgres\" }\n",
                "  lyon: { conninfo: \"host=127.0.0.1 port=5433 dbname=shop user=postgres\" }\n  s2: { conninfo: \"host=127.0.0.1 port=5441 dbname=shop user=postgres\" }\n")
            .Replace("  s2:\n    from: lyon\n    pgdata: /srv/s2\n    port: 5441\n    mode: streaming\n", ""), promoted);
        var config = ConfigLoader.Parse(promoted, File);
        Assert.Equal(["paris", "lyon", "s2"], config.Nodes.Keys);
        Assert.Equal(["s1"], config.Standbys.Keys);
    }

    [Fact]
    public void A_section_on_one_line_is_not_rewritten()
    {
        var text = Nodes + "standbys: { s1: { from: paris, pgdata: /srv/s1, port: 5440, mode: streaming } }\n";
        var e = Assert.Throws<ConfigException>(() => ConfigFileEditor.RemoveStandby(text, File, "s1"));
        Assert.Equal(new ConfigError(File, 4, "'standbys' is written on one line (flow style); write it as a block, one entry per line, so navette can update it"),
            Assert.Single(e.Errors));
    }

    [Theory]
    [InlineData("500ms", "500ms", 500L)]
    [InlineData("30", "30", 30L)]
    [InlineData("5 min", "5min", 300_000L)]
    [InlineData("2h", "2h", 7_200_000L)]
    [InlineData("1d", "1d", 86_400_000L)]
    public void Durations_follow_postgresql_units(string text, string normalized, long ms)
    {
        Assert.True(PgDuration.TryParse(text, out var n, out var parsed, out _));
        Assert.Equal((normalized, ms), (n, parsed));
    }

    [Theory]
    [InlineData("1.5s")]
    [InlineData("-3s")]
    [InlineData("25d")]
    [InlineData("5 minutes")]
    public void Durations_postgresql_refuses_are_refused(string text) =>
        Assert.False(PgDuration.TryParse(text, out _, out _, out _));
}
