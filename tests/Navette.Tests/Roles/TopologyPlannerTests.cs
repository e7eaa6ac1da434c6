using Navette.Config;
using Navette.Roles;
using Xunit;

namespace Navette.Tests.Roles;

/// <summary>Role changes worked out on the file alone: the new subscriptions, their names, the refusals, the edited file.</summary>
public sealed class TopologyPlannerTests
{
    private const string Nodes = """
        nodes:
          a: { conninfo: "host=h1 dbname=d" }
          b: { conninfo: "host=h2 dbname=d" }
          c: { conninfo: "host=h3 dbname=d" }
          d: { conninfo: "host=h4 dbname=d" }
        sets:
          shop: { tables: [public.orders] }
          extra: { tables: [public.audit] }

        """;

    private static NavetteConfig Parse(string subscriptions) => ConfigLoader.Parse(Nodes + subscriptions, "navette.yaml");

    private static string Describe(IEnumerable<SubscriptionConfig> subs) =>
        string.Join(", ", subs.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => $"{s.Name}:{s.From}>{s.To}[{string.Join("+", s.Sets)}]{(s.Forward ? "f" : "")}{(s.InitialCopy ? "c" : "")}"));

    [Fact]
    public void Star_switchover_feeds_everyone_from_the_new_origin_under_names_in_the_file_s_style()
    {
        var config = Parse("""
            subscriptions:
              a_to_b: { from: a, to: b, sets: [shop] }
              a_to_c: { from: a, to: c, sets: [shop] }
            """);
        Assert.Equal("a", TopologyPlanner.OriginOf(config));
        var change = TopologyPlanner.Plan(config, "b", keepOldOrigin: true);
        Assert.Equal("a_to_b:a>b[shop]c, a_to_c:a>c[shop]c", Describe(change.Removed));
        Assert.Equal("b_to_a:b>a[shop], b_to_c:b>c[shop]", Describe(change.Added));

        var edited = ConfigLoader.Parse(change.Edit(Nodes + "subscriptions:\n  a_to_b: { from: a, to: b, sets: [shop] }\n  a_to_c: { from: a, to: c, sets: [shop] }\n",
            "navette.yaml", config, fenceOldOrigin: false), "navette.yaml");
        Assert.Equal("b_to_a:b>a[shop], b_to_c:b>c[shop]", Describe(edited.Subscriptions.Values));
        Assert.False(edited.Nodes["a"].Fenced);
    }

    [Fact]
    public void Cascade_switchover_keeps_subtrees_below_the_path_and_re_points_the_path()
    {
        var config = Parse("""
            subscriptions:
              a_b: { from: a, to: b, sets: [shop] }
              b_c: { from: b, to: c, sets: [shop], forward: true }
              c_d: { from: c, to: d, sets: [shop], forward: true }
            """);
        var change = TopologyPlanner.Plan(config, "c", keepOldOrigin: true);
        Assert.Equal("a_b:a>b[shop]c, b_c:b>c[shop]fc", Describe(change.Removed));
        Assert.Equal("c_a:c>a[shop], c_b:c>b[shop]", Describe(change.Added));
        Assert.Equal("b_c", change.IntoNewOrigin.Name);
    }

    [Fact]
    public void Failover_fences_the_old_origin_and_only_takes_a_direct_replica()
    {
        var config = Parse("""
            subscriptions:
              ab: { from: a, to: b, sets: [shop] }
              ac: { from: a, to: c, sets: [shop] }
              cd: { from: c, to: d, sets: [shop], forward: true }
            """);
        var change = TopologyPlanner.Plan(config, "b", keepOldOrigin: false);
        Assert.Equal("b_c:b>c[shop]", Describe(change.Added));
        var text = change.Edit(Nodes + "subscriptions:\n  ab: { from: a, to: b, sets: [shop] }\n  ac: { from: a, to: c, sets: [shop] }\n  cd: { from: c, to: d, sets: [shop], forward: true }\n",
            "navette.yaml", config, fenceOldOrigin: true);
        var edited = ConfigLoader.Parse(text, "navette.yaml");
        Assert.True(edited.Nodes["a"].Fenced);
        Assert.Equal("b_c:b>c[shop], cd:c>d[shop]fc", Describe(edited.Subscriptions.Values));
        Assert.Contains("a: { conninfo: \"host=h1 dbname=d\", fenced: true }", text);

        var e = Assert.Throws<NavetteException>(() => TopologyPlanner.Plan(config, "d", keepOldOrigin: false));
        Assert.StartsWith("node d reads from c, not from the lost origin a", e.Message);
    }

    [Fact]
    public void Refusals_name_the_reason()
    {
        var narrower = Parse("""
            subscriptions:
              a_b: { from: a, to: b, sets: [shop] }
              a_c: { from: a, to: c, sets: [shop, extra] }
            """);
        Assert.Contains("subscription a_c carries set(s) extra to c, which b does not receive",
            Assert.Throws<NavetteException>(() => TopologyPlanner.Plan(narrower, "b", keepOldOrigin: true)).Message);
        Assert.Contains("already the origin", Assert.Throws<NavetteException>(() => TopologyPlanner.Plan(narrower, "a", keepOldOrigin: true)).Message);
        Assert.Contains("node d is in no subscription", Assert.Throws<NavetteException>(() => TopologyPlanner.Plan(narrower, "d", keepOldOrigin: true)).Message);

        var manyToOne = Parse("""
            subscriptions:
              a_c: { from: a, to: c, sets: [shop] }
              b_c: { from: b, to: c, sets: [extra] }
            """);
        Assert.Contains("node c receives several subscriptions (a_c, b_c)", Assert.Throws<NavetteException>(() => TopologyPlanner.OriginOf(manyToOne)).Message);

        var mesh = ConfigLoader.Parse(Nodes.Replace("shop: { tables: [public.orders] }", "shop: { tables: [public.orders], mesh: [a, b] }"), "navette.yaml");
        Assert.Contains("switchover, failover and rejoin handle one-way topologies", Assert.Throws<NavetteException>(() => TopologyPlanner.OriginOf(mesh)).Message);
    }

    [Fact]
    public void A_fenced_node_takes_part_in_no_subscription()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("""
            nodes:
              a: { conninfo: "host=h1", fenced: true }
              b: { conninfo: "host=h2" }
            sets:
              s: { tables: [public.t] }
            subscriptions:
              a_b: { from: a, to: b, sets: [s] }
            """, "navette.yaml"));
        Assert.Equal("navette.yaml:7: subscription 'a_b' uses node 'a', which is fenced (line 2): it left the topology at a failover and takes part in no subscription until 'navette rejoin a' brings it back",
            Assert.Single(e.Errors).ToString());
        var bad = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("nodes:\n  a: { conninfo: \"host=h1\", fenced: maybe }\n", "navette.yaml"));
        Assert.Contains("'fenced' must be true or false", Assert.Single(bad.Errors).ToString());
    }

    [Fact]
    public void Navette_sessions_write_on_nodes_kept_read_only()
    {
        var node = new NodeConfig("a", "host=h1 dbname=d options='-c work_mem=8MB'", 1);
        var cs = new Npgsql.NpgsqlConnectionStringBuilder(node.ToNpgsqlConnectionString());
        Assert.Equal("-c work_mem=8MB " + NodeConfig.WritableOption, cs.Options);
        Assert.EndsWith(NodeConfig.WritableOption, Navette.Capture.ChangeStream.SessionOptions);
    }
}
