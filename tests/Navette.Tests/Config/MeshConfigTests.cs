using Navette.Config;
using Navette.Conflicts;
using Xunit;

namespace Navette.Tests.Config;

/// <summary>mesh:, conflicts: and table-level policies: what they generate and every mistake reported with its line.</summary>
public class MeshConfigTests
{
    private const string File = "test.yaml";

    private const string Nodes = """
        nodes:
          paris: { conninfo: "host=h1 dbname=shop" }
          lyon: { conninfo: "host=h2 dbname=shop" }
          nice: { conninfo: "host=h3 dbname=shop" }

        """;

    private static NavetteConfig Parse(string yaml) => ConfigLoader.Parse(Nodes + yaml, File);

    private static List<string> Errors(string yaml) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Nodes + yaml, File)).Errors.Select(e => e.ToString()).ToList();

    [Fact]
    public void Mesh_generates_a_subscription_each_way_between_every_pair_the_seed_copying_to_the_others()
    {
        var config = Parse("""
            sets:
              shop:
                tables: [public.orders, { name: public.stock, conflicts: priority, priority: [lyon, paris] }]
                mesh: [paris, lyon, nice]
            """);
        Assert.Equal(6, config.Subscriptions.Count);
        var paris2lyon = config.Subscriptions["mesh_paris_lyon"];
        Assert.True(paris2lyon is { From: "paris", To: "lyon", InitialCopy: true, Forward: false, Generated: true, Join: null });
        var lyon2nice = config.Subscriptions["mesh_lyon_nice"];
        Assert.False(lyon2nice.InitialCopy);
        Assert.Equal(new MeshJoin("mesh_paris_nice", "mesh_lyon_paris"), lyon2nice.Join);
        var nice2paris = config.Subscriptions["mesh_nice_paris"];
        Assert.True(nice2paris is { InitialCopy: false, Join: null });

        var shop = config.Sets["shop"];
        Assert.True(shop.MultiMaster);
        Assert.Equal(ConflictPolicyKind.Latest, shop.PolicyFor("public", "orders")!.Kind);
        var stock = shop.PolicyFor("public", "stock")!;
        Assert.Equal(ConflictPolicyKind.Priority, stock.Kind);
        Assert.Equal(["lyon", "paris"], stock.Priority);
    }

    [Fact]
    public void Mesh_without_copy_and_with_options()
    {
        var config = Parse("""
            sets:
              shop:
                tables: [public.orders]
                mesh: { nodes: [paris, lyon], initial_copy: false, copy_workers: 2 }
                conflicts: random
                conflict_window: 500ms
            """);
        Assert.All(config.Subscriptions.Values, s => Assert.True(s is { InitialCopy: false, Join: null, CopyWorkers: 2 }));
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.Sets["shop"].Conflicts!.Window);
    }

    [Fact]
    public void Explicit_subscriptions_both_ways_make_the_set_multi_master_and_forward_there_is_refused()
    {
        var config = Parse("""
            sets:
              shop: { tables: [public.orders] }
            subscriptions:
              a: { from: paris, to: lyon, sets: [shop] }
              b: { from: lyon, to: paris, sets: [shop], initial_copy: false }
            """);
        Assert.True(config.Sets["shop"].MultiMaster);
        Assert.Equal(ConflictPolicyKind.Latest, config.Sets["shop"].PolicyFor("public", "orders")!.Kind);

        var errors = Errors("""
            sets:
              shop: { tables: [public.orders] }
            subscriptions:
              a: { from: paris, to: lyon, sets: [shop], forward: true }
              b: { from: lyon, to: paris, sets: [shop] }
            """);
        Assert.Contains("test.yaml:8: subscription 'a': forward: true on a set replicated both ways between 'paris' and 'lyon' (shop) would send changes round in a loop; remove forward", errors);
    }

    [Fact]
    public void One_way_sets_handle_no_conflicts_unless_asked()
    {
        var config = Parse("""
            sets:
              shop: { tables: [public.orders] }
              stock: { tables: [public.stock], conflicts: skip }
            subscriptions:
              a: { from: paris, to: lyon, sets: [shop, stock] }
            """);
        Assert.Null(config.Sets["shop"].PolicyFor("public", "orders"));
        Assert.Equal(ConflictPolicyKind.Skip, config.Sets["stock"].PolicyFor("public", "stock")!.Kind);
    }

    [Fact]
    public void Every_policy_mistake_is_reported_with_its_line()
    {
        var errors = Errors("""
            sets:
              a:
                tables: [public.a]
                conflicts: lastest
              b:
                tables: [public.b]
                conflicts: priority
              c:
                tables: [public.c]
                conflicts: custom
              d:
                tables: [public.d]
                conflicts: latest
                priority: [paris]
                conflict_window: soon
              e:
                tables: [{ conflicts: latest }, { name: public.e, conflicts: priority, priority: [paris, rome] }]
              f:
                tables: [public.f]
                mesh: [paris]
              g:
                tables: [public.g]
                mesh: [paris, paris, london]
            """);
        Assert.Equal(
        [
            "test.yaml:8: set 'a': 'conflicts' must be one of latest, priority, random, incoming, local, skip, abort, custom, not 'lastest'; did you mean 'latest'?",
            "test.yaml:11: set 'b': conflicts: priority needs 'priority', the nodes in order of precedence, e.g. priority: [paris, lyon]",
            "test.yaml:14: set 'c': conflicts: custom needs 'conflict_function', a function (conflict_type text, local jsonb, remote jsonb) returning jsonb",
            "test.yaml:18: set 'd': 'priority' only applies to conflicts: priority (this is conflicts: latest)",
            "test.yaml:19: set 'd': 'conflict_window' must be a positive duration such as 500ms, 5s, 2m or 1h, not 'soon'",
            "test.yaml:21: set 'e': a table entry written as a mapping needs 'name', e.g. { name: public.orders, conflicts: priority }",
            "test.yaml:21: set 'e', table public.e: unknown node 'rome' in 'priority'; defined nodes: paris, lyon, nice",
            "test.yaml:24: set 'f': 'mesh' needs at least 2 node(s)",
            "test.yaml:27: set 'g': node 'paris' is listed twice in 'mesh' (first at line 27)",
            "test.yaml:27: set 'g': unknown node 'london' in 'mesh'; defined nodes: paris, lyon, nice",
        ], errors);
    }

    [Fact]
    public void A_mesh_clashing_with_an_explicit_subscription_is_refused()
    {
        var errors = Errors("""
            sets:
              shop: { tables: [public.orders], mesh: [paris, lyon] }
            subscriptions:
              mine: { from: paris, to: lyon, sets: [shop] }
            """);
        Assert.Contains(errors, e => e.StartsWith("test.yaml:6: set 'shop': its mesh replicates 'paris' to 'lyon', like subscription 'mine' (line 8)", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("5s", 5.0)]
    [InlineData("250ms", 0.25)]
    [InlineData("2m", 120.0)]
    [InlineData("1h", 3600.0)]
    [InlineData("3", 3.0)]
    public void Durations(string text, double seconds)
    {
        var config = Parse($"sets:\n  s: {{ tables: [public.t], conflicts: random, conflict_window: {text} }}\n");
        Assert.Equal(TimeSpan.FromSeconds(seconds), config.Sets["s"].Conflicts!.Window);
    }
}
