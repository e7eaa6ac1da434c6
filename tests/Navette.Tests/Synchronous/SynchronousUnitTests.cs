using Navette.Config;
using Navette.Synchronous;
using Xunit;

namespace Navette.Tests.Synchronous;

/// <summary>synchronous_standby_names parsing and combination, and the configuration keys, without a database.</summary>
public sealed class SynchronousUnitTests
{
    private static StandbyNames Parse(string text)
    {
        Assert.True(StandbyNames.TryParse(text, out var parsed, out var problem), problem);
        return parsed;
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("   ", "")]
    [InlineData("s1", "FIRST 1 (s1)")]
    [InlineData("s1, s2", "FIRST 1 (s1, s2)")]
    [InlineData("2 (s1, s2, s3)", "FIRST 2 (s1, s2, s3)")]
    [InlineData("first 2 (s1,s2)", "FIRST 2 (s1, s2)")]
    [InlineData("any 1 (\"My Standby\", navette_a)", "ANY 1 (\"My Standby\", navette_a)")]
    [InlineData("ANY 2 (\"a\"\"b\", \"any\", c$1)", "ANY 2 (\"a\"\"b\", \"any\", c$1)")]
    [InlineData("*", "FIRST 1 (*)")]
    public void Parses_every_form_PostgreSQL_accepts(string text, string formatted) =>
        Assert.Equal(formatted, Parse(text).Format());

    [Theory]
    [InlineData("ANY (a)")]
    [InlineData("ANY 0 (a)")]
    [InlineData("2 (a, b")]
    [InlineData("a b")]
    [InlineData("\"open")]
    [InlineData("a; b")]
    public void Refuses_what_PostgreSQL_refuses(string text) =>
        Assert.False(StandbyNames.TryParse(text, out _, out _));

    [Fact]
    public void Navette_alone_lists_its_names_under_any_with_the_quorum()
    {
        Assert.Equal("ANY 1 (navette_a, navette_b)", StandbyNames.None.Combine(["navette_a", "navette_b"], 1, out var note).Format());
        Assert.Null(note);
        Assert.Equal("ANY 2 (navette_a, navette_b)", Parse("ANY 1 (navette_a)").Combine(["navette_a", "navette_b"], 2, out _).Format());
        // A quorum above the names listed (one degraded) is clipped: a count above the list would wait forever.
        Assert.Equal("ANY 1 (navette_b)", Parse("ANY 2 (navette_a, navette_b)").Combine(["navette_b"], 2, out _).Format());
        Assert.Equal("", Parse("ANY 1 (navette_a)").Combine([], 0, out _).Format());
    }

    [Fact]
    public void Foreign_names_are_kept_and_both_requirements_hold()
    {
        // One physical standby required, navette's one required: both, exactly.
        var both = Parse("s1").Combine(["navette_a"], 1, out var note);
        Assert.Equal("FIRST 2 (s1, navette_a)", both.Format());
        Assert.Null(note);
        // Read back, the foreign requirement is what it was; removing navette's names gives the original back.
        var (method, count, names) = both.ForeignPart();
        Assert.Equal((SyncMethod.First, 1), (method, count));
        Assert.Equal(["s1"], names);
        Assert.Equal("FIRST 2 (s1, navette_a)", both.Combine(["navette_a"], 1, out _).Format());
        Assert.Equal("FIRST 1 (s1)", both.Combine([], 0, out _).Format());

        // ANY 1 of two physical standbys and 1 of navette's 2: any max(2+1, 2+1) = 3 of the 4 include one of each.
        var quorum = Parse("ANY 1 (s1, s2)").Combine(["navette_a", "navette_b"], 1, out note);
        Assert.Equal("ANY 3 (s1, s2, navette_a, navette_b)", quorum.Format());
        Assert.NotNull(note);
        Assert.Contains("more than either needs alone", note, StringComparison.Ordinal);
        Assert.Equal("ANY 1 (s1, s2)", quorum.Combine([], 0, out _).Format());
        Assert.Equal(quorum.Format(), quorum.Combine(["navette_a", "navette_b"], 1, out _).Format()); // stable
    }

    [Fact]
    public void Nothing_changes_when_navette_has_nothing_to_list_and_listed_nothing()
    {
        var value = Parse("s1, s2");
        Assert.Same(value, value.Combine([], 0, out _));
        var star = Parse("*");
        Assert.Same(star, star.Combine([], 0, out _));
    }

    [Fact]
    public void A_star_cannot_be_combined_since_it_also_matches_asynchronous_subscriptions()
    {
        var e = Assert.Throws<NavetteException>(() => Parse("*").Combine(["navette_a"], 1, out _));
        Assert.Contains("'*'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_compare_case_insensitively_as_in_PostgreSQL()
    {
        var v = Parse("ANY 1 (NAVETTE_A, s1)");
        Assert.True(v.Lists("navette_a"));
        Assert.Equal(["NAVETTE_A"], v.NavetteNames);
        Assert.Equal(["s1"], v.ForeignNames);
    }

    // ------------------------------------------------------------------ configuration

    private const string Nodes = """
        nodes:
          paris: { conninfo: "host=127.0.0.1 port=5432 dbname=shop user=postgres" }
          lyon: { conninfo: "host=127.0.0.1 port=5433 dbname=shop user=postgres" }
          nice: { conninfo: "host=127.0.0.1 port=5434 dbname=shop user=postgres" }

        """;

    private static NavetteConfig Load(string rest) => ConfigLoader.Parse(Nodes + rest, "test.yaml");

    private static ConfigError SingleError(string rest) =>
        Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Nodes + rest, "test.yaml")).Errors);

    [Fact]
    public void Synchronous_keys_parse_and_the_quorum_comes_from_the_sets()
    {
        var config = Load("""
            sets:
              shop: { tables: [public.orders], synchronous_quorum: 1 }
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop], synchronous: true, degrade_after: 10s }
              to_nice: { from: paris, to: nice, sets: [shop], synchronous: true }
              back: { from: lyon, to: nice, sets: [shop] }
            """);
        Assert.True(config.Subscriptions["to_lyon"].Synchronous);
        Assert.Equal(TimeSpan.FromSeconds(10), config.Subscriptions["to_lyon"].DegradeAfter);
        Assert.Null(config.Subscriptions["to_nice"].DegradeAfter);
        Assert.False(config.Subscriptions["back"].Synchronous);
        var group = Assert.Single(SynchronousGroup.For(config)).Value;
        Assert.Equal("paris", group.Origin);
        Assert.Equal(1, group.Quorum);
        Assert.Equal(["navette_to_lyon", "navette_to_nice"], group.Names);
    }

    [Fact]
    public void Without_a_quorum_every_synchronous_subscription_must_confirm()
    {
        var config = Load("""
            sets:
              shop: { tables: [public.orders] }
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop], synchronous: true }
              to_nice: { from: paris, to: nice, sets: [shop], synchronous: true }
            """);
        Assert.Equal(2, SynchronousGroup.For(config)["paris"].Quorum);
    }

    [Fact]
    public void Degrade_after_needs_a_synchronous_subscription() =>
        Assert.Equal(new ConfigError("test.yaml", 12, "subscription 'to_lyon': 'degrade_after' only applies to a synchronous subscription; add synchronous: true or remove it"),
            SingleError("""
                sets:
                  shop: { tables: [public.orders] }
                subscriptions:
                  to_lyon:
                    from: paris
                    to: lyon
                    sets: [shop]
                    degrade_after: 10s
                """));

    [Fact]
    public void Degrade_after_must_be_a_duration()
    {
        var e = SingleError("""
            sets:
              shop: { tables: [public.orders] }
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop], synchronous: true, degrade_after: soon }
            """);
        Assert.Equal(8, e.Line);
        Assert.Contains("'degrade_after' must be a positive duration", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_quorum_above_the_synchronous_subscriptions_would_wait_forever()
    {
        var e = SingleError("""
            sets:
              shop:
                tables: [public.orders]
                synchronous_quorum: 3
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop], synchronous: true }
              to_nice: { from: paris, to: nice, sets: [shop], synchronous: true }
            """);
        Assert.Equal(8, e.Line);
        Assert.Equal("set 'shop': synchronous_quorum 3 but only 2 subscription(s) with synchronous: true read from node 'paris' (to_lyon, to_nice); commits there would wait forever", e.Message);
    }

    [Fact]
    public void A_quorum_without_a_synchronous_subscription_is_refused()
    {
        var e = SingleError("""
            sets:
              shop: { tables: [public.orders], synchronous_quorum: 1 }
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop] }
            """);
        Assert.Equal(6, e.Line);
        Assert.StartsWith("set 'shop': 'synchronous_quorum' counts subscriptions with synchronous: true, and none carries this set", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sets_of_one_origin_cannot_ask_for_different_quorums()
    {
        var e = SingleError("""
            sets:
              shop: { tables: [public.orders], synchronous_quorum: 1 }
              bill: { tables: [public.bills], synchronous_quorum: 2 }
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop, bill], synchronous: true }
              to_nice: { from: paris, to: nice, sets: [shop, bill], synchronous: true }
            """);
        Assert.Equal(6, e.Line);
        Assert.Contains("node 'paris': its synchronous subscriptions carry sets with different synchronous_quorum values", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Under_a_quorum_every_synchronous_subscription_carries_the_same_sets()
    {
        var e = SingleError("""
            sets:
              shop: { tables: [public.orders], synchronous_quorum: 1 }
              bill: { tables: [public.bills] }
            subscriptions:
              to_lyon: { from: paris, to: lyon, sets: [shop, bill], synchronous: true }
              to_nice: { from: paris, to: nice, sets: [shop], synchronous: true }
            """);
        Assert.Equal(10, e.Line);
        Assert.EndsWith("this one lacks bill", e.Message, StringComparison.Ordinal);
    }
}
