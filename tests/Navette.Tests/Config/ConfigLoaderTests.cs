using Navette.Config;
using Npgsql;
using Xunit;

namespace Navette.Tests.Config;

public class ConfigLoaderTests
{
    internal const string File = "test.yaml";

    private const string Nodes = """
        nodes:
          paris: { conninfo: "host=127.0.0.1 port=5432 dbname=shop user=postgres" }
          lyon:
            conninfo: postgresql://postgres@127.0.0.1:5433/shop
        """;

    private static NavetteConfig Parse(string yaml) => ConfigLoader.Parse(yaml, File);

    internal static IReadOnlyList<ConfigError> Errors(string yaml) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File)).Errors;

    internal static void AssertError(string yaml, int line, string message)
    {
        var error = Assert.Single(Errors(yaml));
        Assert.Equal(new ConfigError(File, line, message), error);
    }

    // ------------------------------------------------------------------ valid files

    [Fact]
    public void Full_valid_file_parses_with_defaults_applied()
    {
        var config = Parse("""
            nodes:
              paris: { conninfo: "host=127.0.0.1 port=5432 dbname=shop user=postgres" }
              lyon:
                conninfo: postgresql://postgres@127.0.0.1:5433/shop
            sets:
              shop:
                tables: [public.orders, "public.order_*", billing.*]
            subscriptions:
              paris_to_lyon:
                from: paris
                to: lyon
                sets: [shop]
            """);

        Assert.Equal(File, config.SourcePath);
        Assert.Equal(["paris", "lyon"], config.Nodes.Keys);
        Assert.Equal(new NodeConfig("paris", "host=127.0.0.1 port=5432 dbname=shop user=postgres", 2), config.Nodes["paris"]);
        Assert.Equal(new NodeConfig("lyon", "postgresql://postgres@127.0.0.1:5433/shop", 3), config.Nodes["lyon"]);
        var lyon = new NpgsqlConnectionStringBuilder(config.Nodes["lyon"].ToNpgsqlConnectionString());
        Assert.Equal(5433, lyon.Port);
        Assert.Equal("shop", lyon.Database);

        var shop = config.Sets["shop"];
        Assert.Equal("shop", shop.Name);
        Assert.Equal(6, shop.Line);
        Assert.Equal(["public.orders", "public.order_*", "billing.*"], shop.Tables.Select(t => t.Text));
        Assert.All(shop.Tables, t => Assert.Equal(7, t.Line));
        Assert.Equal(("billing", "*"), (shop.Tables[2].Schema, shop.Tables[2].Table));
        Assert.True(shop.Matches("public", "order_lines"));
        Assert.False(shop.Matches("public", "customers"));

        var sub = Assert.Single(config.Subscriptions).Value;
        Assert.Equal(
            new SubscriptionConfig("paris_to_lyon", "paris", "lyon", sub.Sets, InitialCopy: true, Forward: false,
                CopySchema: false, CopyWorkers: 4, Line: 9),
            sub);
        Assert.Equal(["shop"], sub.Sets);
    }

    [Fact]
    public void Explicit_subscription_options_are_read()
    {
        var config = Parse(Nodes + """

            sets:
              shop: { tables: [public.orders] }
              audit: { tables: [audit.log] }
            subscriptions:
              paris_to_lyon:
                from: paris
                to: lyon
                sets: [shop, audit]
                initial_copy: false
                forward: true
                copy_schema: True
                copy_workers: 64
            """);
        var sub = config.Subscriptions["paris_to_lyon"];
        Assert.False(sub.InitialCopy);
        Assert.True(sub.Forward);
        Assert.True(sub.CopySchema);
        Assert.Equal(64, sub.CopyWorkers);
        Assert.Equal(["shop", "audit"], sub.Sets);
        Assert.Equal(SubscriptionConfig.DefaultApplyTimeout, sub.ApplyTimeout);
    }

    [Fact]
    public void Apply_timeout_is_a_duration_of_at_least_100ms()
    {
        const string head = Nodes + "\nsets:\n  shop: { tables: [public.orders] }\nsubscriptions:\n";
        Assert.Equal(TimeSpan.FromSeconds(5), Parse(head + "  a: { from: paris, to: lyon, sets: [shop], apply_timeout: 5s }\n").Subscriptions["a"].ApplyTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), Parse(head + "  a: { from: paris, to: lyon, sets: [shop], apply_timeout: 2m }\n").Subscriptions["a"].ApplyTimeout);
        var line = head.Split('\n').Length;
        AssertError(head + "  a: { from: paris, to: lyon, sets: [shop], apply_timeout: 10ms }\n", line,
            "subscription 'a': 'apply_timeout' must be " + ConfigUnits.DurationHint + ", at least 100ms, not '10ms'");
    }

    [Fact]
    public void Max_transaction_memory_is_a_size_of_at_least_1MB()
    {
        const string head = Nodes + "\nsets:\n  shop: { tables: [public.orders] }\nsubscriptions:\n";
        Assert.Equal(SubscriptionConfig.DefaultMaxTransactionMemory, Parse(head + "  a: { from: paris, to: lyon, sets: [shop] }\n").Subscriptions["a"].MaxTransactionMemory);
        Assert.Equal(1L << 30, Parse(head + "  a: { from: paris, to: lyon, sets: [shop], max_transaction_memory: 1GB }\n").Subscriptions["a"].MaxTransactionMemory);
        var line = head.Split('\n').Length;
        AssertError(head + "  a: { from: paris, to: lyon, sets: [shop], max_transaction_memory: 100kB }\n", line,
            "subscription 'a': 'max_transaction_memory' must be " + ConfigUnits.SizeHint + ", at least 1MB, not '100kB'");
    }

    [Fact]
    public void Dictionaries_iterate_in_file_order()
    {
        var config = Parse("""
            nodes:
              zulu: { conninfo: "host=z" }
              alpha: { conninfo: "host=a" }
              mike: { conninfo: "host=m" }
            sets:
              s2: { tables: [a.b] }
              s1: { tables: [a.c] }
            subscriptions:
              z_a: { from: zulu, to: alpha, sets: [s2] }
              a_m: { from: alpha, to: mike, sets: [s1] }
              m_z: { from: mike, to: zulu, sets: [s1, s2] }
            """);
        Assert.Equal(["zulu", "alpha", "mike"], config.Nodes.Keys);
        Assert.Equal(["zulu", "alpha", "mike"], config.Nodes.Select(kv => kv.Value.Name));
        Assert.Equal(["s2", "s1"], config.Sets.Keys);
        Assert.Equal(["z_a", "a_m", "m_z"], config.Subscriptions.Keys);
        Assert.Equal(["z_a", "a_m", "m_z"], config.Subscriptions.Values.Select(s => s.Name));
    }

    [Fact]
    public void Sets_and_subscriptions_may_be_absent_or_empty()
    {
        Assert.Empty(Parse(Nodes).Sets);
        Assert.Empty(Parse(Nodes).Subscriptions);
        var config = Parse(Nodes + "\nsets:\nsubscriptions: {}\n");
        Assert.Empty(config.Sets);
        Assert.Empty(config.Subscriptions);
    }

    [Fact]
    public void Anchors_and_aliases_are_resolved()
    {
        var config = Parse("""
            nodes:
              paris: { conninfo: &ci "host=a" }
              lyon: { conninfo: *ci }
            """);
        Assert.Equal("host=a", config.Nodes["lyon"].ConnInfo);
    }

    [Fact]
    public void Name_of_exactly_40_characters_is_accepted()
    {
        var name = "n" + new string('x', 39);
        Assert.Contains(name, Parse($"nodes:\n  {name}: {{ conninfo: \"host=a\" }}\n").Nodes.Keys);
    }

    // ------------------------------------------------------------------ file-level errors

    [Fact]
    public void Yaml_syntax_error_is_one_error_with_the_line()
    {
        AssertError("nodes:\n  paris: { conninfo: \"host=a\" }\n  lyon: [a, b\n", 4,
            "YAML syntax error: While parsing a flow sequence, did not find expected ',' or ']'.");
    }

    [Theory]
    [InlineData("nodes:\n\tparis: {}\n", 2)]
    [InlineData("nodes:\n  paris: { conninfo: host=a }\n\tlyon: {}\n", 3)]
    public void Tab_indentation_is_a_syntax_error_on_the_tab_line(string yaml, int line)
    {
        AssertError(yaml, line, "YAML syntax error: While scanning a mapping, found invalid tab as indentation.");
    }

    [Fact]
    public void Empty_file_is_an_error()
    {
        AssertError("", 1, "the file is empty; it needs at least a 'nodes' section");
        AssertError("# nothing yet\n", 1, "the file is empty; it needs at least a 'nodes' section");
    }

    [Fact]
    public void Root_must_be_a_mapping()
    {
        AssertError("\n- nodes\n- sets\n", 2, "the top level must be a mapping with the keys nodes, sets, subscriptions, monitoring, standbys");
    }

    [Fact]
    public void Only_one_document_is_allowed()
    {
        AssertError(Nodes + "\n---\nsets: {}\n", 5, "the file must hold a single YAML document; another one starts here");
    }

    [Fact]
    public void Unknown_alias_is_reported()
    {
        Assert.Equal(
            [
                new ConfigError(File, 2, "unknown alias '*nope'"),
                new ConfigError(File, 2, "node 'paris': 'conninfo' must be a non-empty string"),
            ],
            Errors("nodes:\n  paris: { conninfo: *nope }\n"));
    }

    [Fact]
    public void Nodes_section_is_required()
    {
        AssertError("sets: {}\n", 1, "missing 'nodes' section; define at least one node");
    }

    [Fact]
    public void Nodes_section_must_not_be_empty()
    {
        AssertError("sets: {}\nnodes:\n", 2, "'nodes' is empty; define at least one node");
        AssertError("sets: {}\nnodes: {}\n", 2, "'nodes' is empty; define at least one node");
    }

    [Fact]
    public void Sections_must_be_mappings()
    {
        AssertError("nodes:\n  - paris\n", 2, "'nodes' must be a mapping of node names to node definitions, not a list");
        AssertError(Nodes + "\nsets: shop\n", 5, "'sets' must be a mapping of set names to set definitions");
    }

    // ------------------------------------------------------------------ unknown and duplicate keys

    [Fact]
    public void Unknown_top_level_key_suggests_the_closest()
    {
        AssertError(Nodes + "\nsubscription: {}\n", 5,
            "unknown key 'subscription' at the top level; allowed: nodes, sets, subscriptions, monitoring, standbys; did you mean 'subscriptions'?");
    }

    [Fact]
    public void Unknown_key_without_close_match_has_no_suggestion()
    {
        AssertError(Nodes + "\nreplication: {}\n", 5, "unknown key 'replication' at the top level; allowed: nodes, sets, subscriptions, monitoring, standbys");
    }

    [Fact]
    public void Unknown_key_in_node()
    {
        AssertError("nodes:\n  paris:\n    conninfo: host=a\n    conifo: host=b\n", 4,
            "unknown key 'conifo' in node 'paris'; allowed: conninfo, fenced; did you mean 'conninfo'?");
    }

    [Fact]
    public void Unknown_key_in_set()
    {
        Assert.Equal(
            [
                new ConfigError(File, 6, "set 'shop': 'tables' is required"),
                new ConfigError(File, 7, "unknown key 'table' in set 'shop'; allowed: tables, mesh, ddl, conflicts, priority, conflict_window, conflict_function, synchronous_quorum; did you mean 'tables'?"),
            ],
            Errors(Nodes + "\nsets:\n  shop:\n    table: [public.a]\n"));
    }

    [Fact]
    public void Ddl_mode_must_be_known()
    {
        Assert.Equal(
            [new ConfigError(File, 7, "set 'shop': ddl 'always' is not one of auto (DDL run on the origin is captured and replayed), execute (only through navette execute, the default), none")],
            Errors(Nodes + "\nsets:\n  shop: { tables: [public.a],\n    ddl: always }\n"));
        var config = ConfigLoader.Parse(Nodes + "\nsets:\n  shop: { tables: [public.a], ddl: auto }\n  other: { tables: [public.b] }\n", File);
        Assert.Equal(DdlMode.Auto, config.Sets["shop"].Ddl);
        Assert.Equal(DdlMode.Execute, config.Sets["other"].Ddl);
    }

    [Fact]
    public void Unknown_key_in_subscription_suggests_the_closest()
    {
        var errors = Errors(Nodes + """

            sets: { shop: { tables: [public.a] } }
            subscriptions:
              a_to_b:
                form: paris
                to: lyon
                sets: [shop]
            """);
        Assert.Equal(
            [
                new ConfigError(File, 7, "subscription 'a_to_b': 'from' is required"),
                new ConfigError(File, 8,
                    "unknown key 'form' in subscription 'a_to_b'; allowed: from, to, sets, initial_copy, forward, copy_schema, copy_workers, lag_threshold, wal_retention, synchronous, degrade_after, apply_timeout, max_transaction_memory; did you mean 'from'?"),
            ],
            errors);
    }

    [Fact]
    public void Duplicate_node_reports_both_lines()
    {
        AssertError("nodes:\n  paris: { conninfo: host=a }\n  lyon: { conninfo: host=b }\n  paris: { conninfo: host=c }\n", 4,
            "duplicate node 'paris' (first defined at line 2)");
    }

    [Fact]
    public void Duplicate_set_and_subscription_report_both_lines()
    {
        var errors = Errors(Nodes + """

            sets:
              shop: { tables: [public.a] }
              shop: { tables: [public.b] }
            subscriptions:
              p_l: { from: paris, to: lyon, sets: [shop] }
              p_l: { from: lyon, to: paris, sets: [shop] }
            """);
        Assert.Equal(
            [
                new ConfigError(File, 7, "duplicate set 'shop' (first defined at line 6)"),
                new ConfigError(File, 10, "duplicate subscription 'p_l' (first defined at line 9)"),
            ],
            errors);
    }

    [Fact]
    public void Duplicate_keys_inside_definitions_and_at_top_level()
    {
        var errors = Errors("""
            nodes:
              paris:
                conninfo: host=a
                conninfo: host=b
            nodes: {}
            """);
        Assert.Equal(
            [
                new ConfigError(File, 4, "duplicate key 'conninfo' in node 'paris' (first defined at line 3)"),
                new ConfigError(File, 5, "duplicate key 'nodes' at the top level (first defined at line 1)"),
            ],
            errors);
    }

    // ------------------------------------------------------------------ names

    [Theory]
    [InlineData("Paris")]
    [InlineData("1paris")]
    [InlineData("paris-east")]
    [InlineData("_paris")]
    [InlineData("\"pa ris\"")]
    public void Invalid_node_names_are_rejected(string name)
    {
        var shown = name.Trim('"');
        AssertError($"nodes:\n  {name}: {{ conninfo: host=a }}\n", 2,
            $"invalid node name '{shown}': use lowercase letters, digits and underscores, starting with a letter "
            + "(names become replication slot, publication and origin names)");
    }

    [Fact]
    public void Too_long_names_are_rejected()
    {
        var name = "s" + new string('x', 40);
        AssertError(Nodes + $"\nsets:\n  {name}: {{ tables: [a.b] }}\n", 6,
            $"set name '{name}' is too long (41 characters; at most 40, since names become replication slot, publication and origin names)");
    }

    [Fact]
    public void Invalid_subscription_name_is_rejected()
    {
        AssertError(Nodes + "\nsets: { s: { tables: [a.b] } }\nsubscriptions:\n  Paris2Lyon: { from: paris, to: lyon, sets: [s] }\n", 7,
            "invalid subscription name 'Paris2Lyon': use lowercase letters, digits and underscores, starting with a letter "
            + "(names become replication slot, publication and origin names)");
    }

    // ------------------------------------------------------------------ nodes

    [Fact]
    public void Node_conninfo_is_required()
    {
        AssertError("nodes:\n  paris: {}\n", 2, "node 'paris': 'conninfo' is required");
        AssertError("nodes:\n  paris:\n", 2, "node 'paris': 'conninfo' is required");
    }

    [Fact]
    public void Node_must_be_a_mapping()
    {
        AssertError("nodes:\n  paris: host=a\n", 2, "node 'paris' must be a mapping with a 'conninfo' key");
    }

    [Theory]
    [InlineData("conninfo:")]
    [InlineData("conninfo: \"\"")]
    [InlineData("conninfo: '  '")]
    [InlineData("conninfo: [host=a]")]
    public void Node_conninfo_must_be_a_non_empty_string(string entry)
    {
        AssertError($"nodes:\n  paris:\n    {entry}\n", 3, "node 'paris': 'conninfo' must be a non-empty string");
    }

    [Fact]
    public void Node_conninfo_must_parse()
    {
        AssertError("nodes:\n  paris:\n    conninfo: host=a colour=blue\n", 3,
            "node 'paris': invalid conninfo: unknown conninfo keyword 'colour'");
    }

    [Theory]
    [InlineData("\"host=a password=hunter2 port=abc\"", "node 'paris': invalid conninfo: invalid port 'abc'; expected a number from 1 to 65535")]
    [InlineData("\"host=a password='hunter2\"", "node 'paris': invalid conninfo: unterminated quoted value for 'password' in conninfo")]
    [InlineData("\"password=hun ter2 host=a\"", "node 'paris': invalid conninfo: missing '=' after the word at position 14 in conninfo (expected keyword=value)")]
    [InlineData("postgresql://u:hunter2@h:abc/db", "node 'paris': invalid conninfo: invalid port 'abc'; expected a number from 1 to 65535")]
    public void Conninfo_errors_never_show_the_password(string conninfo, string expected)
    {
        var error = Assert.Single(Errors($"nodes:\n  paris:\n    conninfo: {conninfo}\n"));
        Assert.Equal(3, error.Line);
        Assert.DoesNotContain("hunter2", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(expected, error.Message);
    }

    [Fact]
    public void Conninfo_error_text_that_happens_to_contain_the_password_is_scrubbed()
    {
        // The unknown keyword equals the password: the safety net in the loader hides it.
        AssertError("nodes:\n  paris:\n    conninfo: postgresql://u:hunter2@h/db?hunter2=1\n", 3,
            "node 'paris': invalid conninfo: unknown conninfo keyword '********'");
    }

    [Fact]
    public void NodeConfig_never_prints_its_password()
    {
        var node = Parse("nodes:\n  paris: { conninfo: \"host=a password=hunter2\" }\n").Nodes["paris"];
        Assert.Equal("host=a password=********", node.RedactedConnInfo);
        Assert.Equal("NodeConfig { Name = paris, ConnInfo = host=a password=********, Line = 2 }", node.ToString());
        Assert.Equal("hunter2", new NpgsqlConnectionStringBuilder(node.ToNpgsqlConnectionString()).Password);
    }

    // ------------------------------------------------------------------ sets

    [Theory]
    [InlineData("  shop: {}", 6, "set 'shop': 'tables' is required")]
    [InlineData("  shop:", 6, "set 'shop': 'tables' is required")]
    [InlineData("  shop: [public.a]", 6, "set 'shop' must be a mapping with a 'tables' key")]
    [InlineData("  shop: { tables: [] }", 6, "set 'shop': 'tables' must be a non-empty list of table names, e.g. [public.orders]")]
    [InlineData("  shop: { tables: public.orders }", 6, "set 'shop': 'tables' must be a non-empty list of table names, e.g. [public.orders]")]
    [InlineData("  shop: { tables: }", 6, "set 'shop': 'tables' must be a non-empty list of table names, e.g. [public.orders]")]
    [InlineData("  shop: { tables: [public.a, [x]] }", 6, "set 'shop': each table entry must be a string like public.orders, or a mapping like { name: public.orders, conflicts: latest }")]
    [InlineData("  shop: { tables: [orders] }", 6, "set 'shop': 'orders' is not qualified with a schema; qualify it, e.g. public.orders")]
    [InlineData("  shop: { tables: [\"public.order[0-9]\"] }", 6, "set 'shop': 'public.order[0-9]' uses '[' or ']', which are not supported in patterns; use * or ?")]
    [InlineData("  shop: { tables: [a.b.c] }", 6, "set 'shop': 'a.b.c' has more than two parts; expected schema.table")]
    public void Set_errors(string setLine, int line, string message)
    {
        AssertError(Nodes + "\nsets:\n" + setLine + "\n", line, message);
    }

    [Fact]
    public void Table_entry_errors_point_at_the_entry_line()
    {
        var errors = Errors(Nodes + """

            sets:
              shop:
                tables:
                  - public.orders
                  - orders
                  - public.
                  - public.orders
                  - '"public"."orders"'
            """);
        Assert.Equal(
            [
                new ConfigError(File, 9, "set 'shop': 'orders' is not qualified with a schema; qualify it, e.g. public.orders"),
                new ConfigError(File, 10, "set 'shop': 'public.' has an empty name part"),
                new ConfigError(File, 11, "set 'shop': table 'public.orders' is listed twice (first at line 8)"),
                new ConfigError(File, 12, "set 'shop': table '\"public\".\"orders\"' is listed twice (first as 'public.orders' at line 8)"),
            ],
            errors);
    }

    [Fact]
    public void Quoted_wildcard_differs_from_unquoted_wildcard()
    {
        var config = Parse(Nodes + "\nsets:\n  s: { tables: ['public.\"a*\"', public.a*] }\n");
        Assert.Equal(2, config.Sets["s"].Tables.Count);
    }

    // ------------------------------------------------------------------ subscriptions

    private const string NodesAndSets = Nodes + """

        sets:
          shop: { tables: [public.orders] }
          billing: { tables: [billing.*] }
        subscriptions:
        """;

    // NodesAndSets ends on line 8, so the subscription below starts on line 9.
    private static void AssertSubscriptionError(string body, int line, string message) =>
        AssertError(NodesAndSets + "\n  sub:\n" + body + "\n", line, message);

    [Fact]
    public void Subscription_from_to_and_sets_are_required()
    {
        var errors = Errors(NodesAndSets + "\n  sub: { initial_copy: true }\n");
        Assert.Equal(
            [
                new ConfigError(File, 9, "subscription 'sub': 'from' is required"),
                new ConfigError(File, 9, "subscription 'sub': 'to' is required"),
                new ConfigError(File, 9, "subscription 'sub': 'sets' is required"),
            ],
            errors);
        AssertError(NodesAndSets + "\n  sub:\n", 9, "subscription 'sub': 'from', 'to' and 'sets' are required");
        AssertError(NodesAndSets + "\n  sub: paris\n", 9, "subscription 'sub' must be a mapping with the keys from, to and sets");
    }

    [Fact]
    public void Unknown_node_lists_defined_nodes_and_suggests()
    {
        AssertSubscriptionError("    from: prais\n    to: lyon\n    sets: [shop]", 10,
            "subscription 'sub': unknown node 'prais' in 'from'; defined nodes: paris, lyon; did you mean 'paris'?");
        AssertSubscriptionError("    from: paris\n    to: marseille\n    sets: [shop]", 11,
            "subscription 'sub': unknown node 'marseille' in 'to'; defined nodes: paris, lyon");
        AssertSubscriptionError("    from: paris\n    to: [lyon]\n    sets: [shop]", 11,
            "subscription 'sub': 'to' must be a node name");
    }

    [Fact]
    public void A_node_cannot_replicate_to_itself()
    {
        AssertSubscriptionError("    from: paris\n    to: paris\n    sets: [shop]", 11,
            "subscription 'sub': a subscription cannot replicate a node to itself ('paris')");
    }

    [Theory]
    [InlineData("    sets: [shp]", "subscription 'sub': unknown set 'shp' in 'sets'; defined sets: shop, billing; did you mean 'shop'?")]
    [InlineData("    sets: []", "subscription 'sub': 'sets' must be a non-empty list of set names, e.g. [shop]")]
    [InlineData("    sets: shop", "subscription 'sub': 'sets' must be a non-empty list of set names, e.g. [shop]")]
    [InlineData("    sets: [shop, shop]", "subscription 'sub': set 'shop' is listed twice (first at line 12)")]
    [InlineData("    sets: [shop, [billing]]", "subscription 'sub': each entry of 'sets' must be a set name")]
    public void Subscription_sets_errors(string setsLine, string message)
    {
        AssertSubscriptionError("    from: paris\n    to: lyon\n" + setsLine, 12, message);
    }

    [Fact]
    public void Unknown_set_when_no_sets_are_defined()
    {
        AssertError(Nodes + "\nsubscriptions:\n  sub: { from: paris, to: lyon, sets: [shop] }\n", 6,
            "subscription 'sub': unknown set 'shop' in 'sets'; defined sets: (none)");
    }

    [Theory]
    [InlineData("initial_copy: yes", "subscription 'sub': 'initial_copy' must be true or false, not 'yes' (only YAML 1.2 booleans are accepted)")]
    [InlineData("forward: on", "subscription 'sub': 'forward' must be true or false, not 'on' (only YAML 1.2 booleans are accepted)")]
    [InlineData("copy_schema: 1", "subscription 'sub': 'copy_schema' must be true or false, not '1' (only YAML 1.2 booleans are accepted)")]
    [InlineData("forward: \"true\"", "subscription 'sub': 'forward' must be true or false, without quotes")]
    [InlineData("forward:", "subscription 'sub': 'forward' must be true or false")]
    [InlineData("forward: [true]", "subscription 'sub': 'forward' must be true or false")]
    [InlineData("copy_workers: 0", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64, not '0'")]
    [InlineData("copy_workers: 65", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64, not '65'")]
    [InlineData("copy_workers: -1", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64, not '-1'")]
    [InlineData("copy_workers: 2.5", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64, not '2.5'")]
    [InlineData("copy_workers: four", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64, not 'four'")]
    [InlineData("copy_workers: 99999999999", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64, not '99999999999'")]
    [InlineData("copy_workers: '4'", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64")]
    [InlineData("copy_workers:", "subscription 'sub': 'copy_workers' must be an integer from 1 to 64")]
    public void Subscription_option_errors(string option, string message)
    {
        AssertSubscriptionError("    from: paris\n    to: lyon\n    sets: [shop]\n    " + option, 13, message);
    }

    [Theory]
    [InlineData("copy_workers: 1", 1)]
    [InlineData("copy_workers: 64", 64)]
    [InlineData("copy_workers: +8", 8)]
    public void Copy_workers_bounds_are_inclusive(string option, int expected)
    {
        var config = Parse(NodesAndSets + "\n  sub:\n    from: paris\n    to: lyon\n    sets: [shop]\n    " + option + "\n");
        Assert.Equal(expected, config.Subscriptions["sub"].CopyWorkers);
    }

    [Fact]
    public void One_subscription_per_node_pair()
    {
        AssertError(NodesAndSets + """

              a: { from: paris, to: lyon, sets: [shop] }
              b: { from: lyon, to: paris, sets: [shop] }
              c: { from: paris, to: lyon, sets: [billing] }
            """, 11,
            "subscription 'c' replicates 'paris' to 'lyon', like subscription 'a' (line 9); "
            + "use one subscription per pair of nodes and list all its sets there");
    }

    // ------------------------------------------------------------------ all at once

    [Fact]
    public void Several_mistakes_are_all_reported_at_once_in_line_order()
    {
        const string yaml = """
            nodes:
              paris: { conninfo: "host=a port=x password=hunter2" }
              Lyon: { conninfo: "host=b" }
              nice: {}
            sets:
              shop: { tables: [orders, public.orders, public.orders] }
              shop: { tables: [public.x] }
            subscriptions:
              a_to_b:
                form: paris
                to: lyon
                sets: [shop, nope]
                initial_copy: yes
                copy_workers: 100
            extra: 1
            """;
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));
        string[] expected =
        [
            "test.yaml:2: node 'paris': invalid conninfo: invalid port 'x'; expected a number from 1 to 65535",
            "test.yaml:3: invalid node name 'Lyon': use lowercase letters, digits and underscores, starting with a letter (names become replication slot, publication and origin names)",
            "test.yaml:4: node 'nice': 'conninfo' is required",
            "test.yaml:6: set 'shop': 'orders' is not qualified with a schema; qualify it, e.g. public.orders",
            "test.yaml:6: set 'shop': table 'public.orders' is listed twice (first at line 6)",
            "test.yaml:7: duplicate set 'shop' (first defined at line 6)",
            "test.yaml:9: subscription 'a_to_b': 'from' is required",
            "test.yaml:10: unknown key 'form' in subscription 'a_to_b'; allowed: from, to, sets, initial_copy, forward, copy_schema, copy_workers, lag_threshold, wal_retention, synchronous, degrade_after, apply_timeout, max_transaction_memory; did you mean 'from'?",
            "test.yaml:11: subscription 'a_to_b': unknown node 'lyon' in 'to'; defined nodes: paris, Lyon, nice; did you mean 'Lyon'?",
            "test.yaml:12: subscription 'a_to_b': unknown set 'nope' in 'sets'; defined sets: shop",
            "test.yaml:13: subscription 'a_to_b': 'initial_copy' must be true or false, not 'yes' (only YAML 1.2 booleans are accepted)",
            "test.yaml:14: subscription 'a_to_b': 'copy_workers' must be an integer from 1 to 64, not '100'",
            "test.yaml:15: unknown key 'extra' at the top level; allowed: nodes, sets, subscriptions, monitoring, standbys",
        ];
        Assert.Equal(expected, ex.Errors.Select(e => e.ToString()));
        Assert.Equal(string.Join('\n', expected), ex.Message);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ files

    [Fact]
    public void Load_reads_a_file_and_locates_errors_in_it()
    {
        var dir = Directory.CreateTempSubdirectory("navette-config-");
        try
        {
            var path = Path.Combine(dir.FullName, "navette.yaml");
            System.IO.File.WriteAllText(path, Nodes + "\n");
            var config = ConfigLoader.Load(path);
            Assert.Equal(path, config.SourcePath);
            Assert.Equal(2, config.Nodes.Count);

            System.IO.File.WriteAllText(path, "nodes:\n  paris: { conninfo: host=a }\n  paris: { conninfo: host=b }\n");
            var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path));
            Assert.Equal($"{path}:3: duplicate node 'paris' (first defined at line 2)", ex.Message);

            var dirError = Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Load(dir.FullName)).Errors);
            Assert.Equal(0, dirError.Line);
            Assert.Contains("-c", dirError.Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Missing_file_names_the_path_and_suggests_c()
    {
        var path = Path.Combine(Path.GetTempPath(), "navette-does-not-exist-" + Guid.NewGuid().ToString("N"), "navette.yaml");
        var ex = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path));
        var error = Assert.Single(ex.Errors);
        Assert.Equal(new ConfigError(path, 0,
            $"configuration file not found (looked for {path}); create it, or pass another file with -c <path>"), error);
        Assert.Equal($"{path}: configuration file not found (looked for {path}); create it, or pass another file with -c <path>", ex.Message);
    }

    [Fact]
    public void ConfigError_formats_as_file_line_message()
    {
        Assert.Equal("a.yaml:12: boom", new ConfigError("a.yaml", 12, "boom").ToString());
        Assert.Equal("a.yaml: boom", new ConfigError("a.yaml", 0, "boom").ToString());
    }

    [Theory]
    [InlineData("form", "from", 1)]
    [InlineData("from", "from", 0)]
    [InlineData("copy_worker", "copy_workers", 1)]
    [InlineData("kitten", "sitting", 3)]
    public void Edit_distance_counts_transpositions_as_one(string a, string b, int expected)
    {
        Assert.Equal(expected, ConfigLoader.EditDistance(a, b));
    }
}
