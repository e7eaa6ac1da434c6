using System.Collections.ObjectModel;
using System.Globalization;
using Navette.Conflicts;

namespace Navette.Config;

/// <summary>
/// Reads <c>navette.yaml</c> and validates all of it before anything touches a database.
/// Every problem is reported, each with its file and line, in one <see cref="ConfigException"/>.
/// </summary>
internal static partial class ConfigLoader
{
    /// <summary>The file read when no <c>-c</c> option is given.</summary>
    public const string DefaultPath = "navette.yaml";

    /// <summary>Names become replication slot, publication and origin names.</summary>
    public const int MaxNameLength = 40;

    private static readonly string[] RootKeys = ["nodes", "sets", "subscriptions", "monitoring", "standbys"];
    private static readonly string[] NodeKeys = ["conninfo", "fenced"];
    private static readonly string[] SetKeys = ["tables", "mesh", "ddl", "conflicts", "priority", "conflict_window", "conflict_function", "synchronous_quorum"];
    private static readonly string[] TableEntryKeys = ["name", "conflicts", "priority", "conflict_window", "conflict_function"];
    private static readonly string[] MeshKeys = ["nodes", "initial_copy", "copy_workers", "copy_schema"];
    private static readonly string[] PolicyKeys = ["conflicts", "priority", "conflict_window", "conflict_function"];

    /// <summary>Generated mesh subscription names still fit a slot name (63 bytes) behind the navette_ prefix.</summary>
    public const int MaxGeneratedNameLength = 55;
    private static readonly string[] SubscriptionKeys =
        ["from", "to", "sets", "initial_copy", "forward", "copy_schema", "copy_workers", "lag_threshold", "wal_retention", "synchronous", "degrade_after", "apply_timeout", "max_transaction_memory"];
    private static readonly string[] StandbyKeys =
        ["from", "pgdata", "port", "host", "mode", "hot", "slot", "archive", "delay"];

    /// <summary>Loads and validates a configuration file; throws <see cref="ConfigException"/> listing every error.</summary>
    public static NavetteConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new ConfigException(new ConfigError(path, 0,
                "is a directory, not a configuration file; pass the YAML file with -c <path>"));
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException(new ConfigError(path, 0,
                $"configuration file not found (looked for {Path.GetFullPath(path)}); create it, or pass another file with -c <path>"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(new ConfigError(path, 0, $"cannot read configuration file: {ex.Message}"));
        }

        return Parse(text, path);
    }

    /// <summary>Validates configuration text; <paramref name="sourcePath"/> is only used to locate errors.</summary>
    public static NavetteConfig Parse(string yamlText, string sourcePath)
    {
        ArgumentNullException.ThrowIfNull(yamlText);
        ArgumentNullException.ThrowIfNull(sourcePath);
        return new Validator(sourcePath).Run(yamlText);
    }

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions).</summary>
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    /// <summary>"; did you mean 'x'?" for the closest candidate within edit distance 2, else "".</summary>
    internal static string Suggestion(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var distance = EditDistance(word, candidate);
            // The length guard keeps "x" from being "close" to every two-letter word.
            if (distance <= 2 && distance < candidate.Length && distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return best is null ? string.Empty : $"; did you mean '{best}'?";
    }

    /// <summary>Why a node, set or subscription name is unusable (nothing when it is fine).</summary>
    internal static IEnumerable<string> NameProblems(string kind, string name)
    {
        if (name.Length == 0)
        {
            yield return $"{kind} name is empty";
            yield break;
        }

        var wellFormed = name[0] is >= 'a' and <= 'z'
            && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_');
        if (!wellFormed)
        {
            yield return $"invalid {kind} name '{name}': use lowercase letters, digits and underscores, starting with a letter "
                + "(names become replication slot, publication and origin names)";
        }

        if (name.Length > MaxNameLength)
        {
            yield return $"{kind} name '{name}' is too long ({name.Length} characters; at most {MaxNameLength}, "
                + "since names become replication slot, publication and origin names)";
        }
    }

    private sealed partial class Validator(string file)
    {
        private readonly List<ConfigError> _errors = [];

        private void Error(int line, string message) => _errors.Add(new ConfigError(file, line, message));

        public NavetteConfig Run(string text)
        {
            var treeErrors = new List<(int Line, string Message)>();
            var root = YamlTreeReader.Read(text, treeErrors, out var syntaxError);
            foreach (var (line, message) in treeErrors)
            {
                Error(line, message);
            }

            if (syntaxError)
            {
                throw new ConfigException(_errors);
            }

            var nodes = new OrderedDictionary<string, NodeConfig>(StringComparer.Ordinal);
            var sets = new OrderedDictionary<string, SetConfig>(StringComparer.Ordinal);
            var subscriptions = new OrderedDictionary<string, SubscriptionConfig>(StringComparer.Ordinal);
            var monitoring = MonitoringConfig.Default;
            var standbys = new OrderedDictionary<string, StandbyConfig>(StringComparer.Ordinal);

            if (root is null || root is YamlTreeScalar { IsNull: true })
            {
                Error(1, "the file is empty; it needs at least a 'nodes' section");
            }
            else if (root is not YamlTreeMapping rootMapping)
            {
                Error(root.Line, $"the top level must be a mapping with the keys {string.Join(", ", RootKeys)}");
            }
            else
            {
                var sections = ReadFields(rootMapping, RootKeys, owner: null);
                if (!sections.TryGetValue("nodes", out var nodesSection))
                {
                    Error(rootMapping.Line, "missing 'nodes' section; define at least one node");
                }
                else
                {
                    ValidateNodes(nodesSection.Key, nodesSection.Value, nodes);
                }

                if (sections.TryGetValue("sets", out var setsSection))
                {
                    ValidateSets(setsSection.Value, sets, nodes);
                }

                if (sections.TryGetValue("monitoring", out var monitoringSection))
                {
                    monitoring = ValidateMonitoring(monitoringSection.Key, monitoringSection.Value);
                }

                if (sections.TryGetValue("standbys", out var standbysSection))
                {
                    ValidateStandbys(standbysSection.Value, nodes, standbys);
                }

                if (sections.TryGetValue("subscriptions", out var subscriptionsSection))
                {
                    ValidateSubscriptions(subscriptionsSection.Value, nodes, sets, subscriptions, monitoring.Limits, standbys);
                }

                GenerateMeshSubscriptions(sets, subscriptions);
                foreach (var generated in subscriptions.Values.Where(s => s.Generated).ToList())
                {
                    subscriptions[generated.Name] = generated with { Limits = monitoring.Limits };
                }

                MarkMultiMasterSets(sets, subscriptions);
                CheckFencedNodes(nodes, subscriptions);
                ValidateSynchronous(sets, subscriptions);
            }

            if (_errors.Count > 0)
            {
                throw new ConfigException(_errors.OrderBy(e => e.Line).ToList());
            }

            return new NavetteConfig(
                file,
                new ReadOnlyDictionary<string, NodeConfig>(nodes),
                new ReadOnlyDictionary<string, SetConfig>(sets),
                new ReadOnlyDictionary<string, SubscriptionConfig>(subscriptions),
                new ReadOnlyDictionary<string, StandbyConfig>(standbys))
            {
                Monitoring = monitoring,
            };
        }

        /// <summary>A fenced node is out of the topology: no subscription reads from it or writes to it.</summary>
        private void CheckFencedNodes(OrderedDictionary<string, NodeConfig> nodes, OrderedDictionary<string, SubscriptionConfig> subscriptions)
        {
            foreach (var node in nodes.Values.Where(n => n.Fenced))
            {
                foreach (var sub in subscriptions.Values.Where(s => s.From == node.Name || s.To == node.Name))
                {
                    Error(sub.Line, (sub.Generated ? $"the mesh of subscription '{sub.Name}'" : $"subscription '{sub.Name}'")
                                    + $" uses node '{node.Name}', which is fenced (line {node.Line}): it left the topology at a failover and takes part "
                                    + $"in no subscription until 'navette rejoin {node.Name}' brings it back");
                }
            }
        }

        // ------------------------------------------------------------ sections

        private void ValidateNodes(YamlTreeScalar sectionKey, YamlTreeNode section, OrderedDictionary<string, NodeConfig> nodes)
        {
            var entries = ReadEntries(section, "nodes", "node");
            if (entries.Count == 0 && section is YamlTreeMapping or YamlTreeScalar { IsNull: true })
            {
                Error(sectionKey.Line, "'nodes' is empty; define at least one node");
            }

            foreach (var (nameKey, value) in entries)
            {
                var name = nameKey.Value;
                var owner = $"node '{name}'";
                var connInfo = string.Empty;
                var fenced = false;
                if (value is YamlTreeScalar { IsNull: true })
                {
                    Error(nameKey.Line, $"{owner}: 'conninfo' is required");
                }
                else if (value is not YamlTreeMapping mapping)
                {
                    Error(value.Line, $"{owner} must be a mapping with a 'conninfo' key");
                }
                else
                {
                    var fields = ReadFields(mapping, NodeKeys, owner);
                    fenced = Boolean(fields, "fenced", owner, false);
                    if (!fields.TryGetValue("conninfo", out var field))
                    {
                        Error(nameKey.Line, $"{owner}: 'conninfo' is required");
                    }
                    else if (field.Value is not YamlTreeScalar { IsNull: false } scalar || string.IsNullOrWhiteSpace(scalar.Value))
                    {
                        Error(LineOf(field), $"{owner}: 'conninfo' must be a non-empty string");
                    }
                    else
                    {
                        connInfo = scalar.Value;
                        try
                        {
                            ConnInfo.ToNpgsql(connInfo);
                        }
                        catch (ArgumentException ex)
                        {
                            Error(scalar.Line, $"{owner}: invalid conninfo: {ConnInfo.ScrubSecrets(ex.Message, connInfo)}");
                        }
                    }
                }

                nodes.Add(name, new NodeConfig(name, connInfo, nameKey.Line) { Fenced = fenced });
            }
        }

        private void ValidateSets(YamlTreeNode section, OrderedDictionary<string, SetConfig> sets, OrderedDictionary<string, NodeConfig> nodes)
        {
            foreach (var (nameKey, value) in ReadEntries(section, "sets", "set"))
            {
                var name = nameKey.Value;
                var owner = $"set '{name}'";
                var tables = new List<TablePattern>();
                var tablePolicies = new List<TablePolicy>();
                var ddl = DdlMode.Execute;
                MeshConfig? mesh = null;
                ConflictPolicy? policy = null;
                int? quorum = null;
                var quorumLine = 0;
                if (value is YamlTreeScalar { IsNull: true })
                {
                    Error(nameKey.Line, $"{owner}: 'tables' is required");
                }
                else if (value is not YamlTreeMapping mapping)
                {
                    Error(value.Line, $"{owner} must be a mapping with a 'tables' key");
                }
                else
                {
                    var fields = ReadFields(mapping, SetKeys, owner);
                    policy = Policy(fields, owner, nodes, inherited: null);
                    if (fields.TryGetValue("synchronous_quorum", out var quorumField))
                    {
                        quorum = Integer(fields, "synchronous_quorum", owner, 1, 1000, null);
                        quorumLine = LineOf(quorumField);
                    }

                    if (Text(fields, "ddl", owner) is { } ddlText)
                    {
                        DdlMode? parsed = ddlText switch { "auto" => DdlMode.Auto, "execute" => DdlMode.Execute, "none" => DdlMode.None, _ => null };
                        if (parsed is { } known)
                            ddl = known;
                        else
                            Error(LineOf(fields["ddl"]), $"{owner}: ddl '{ddlText}' is not one of auto (DDL run on the origin is captured and replayed), execute (only through navette execute, the default), none");
                    }
                    if (fields.TryGetValue("mesh", out var meshField))
                    {
                        mesh = Mesh(meshField, owner, nodes);
                    }

                    if (!fields.TryGetValue("tables", out var field))
                    {
                        Error(nameKey.Line, $"{owner}: 'tables' is required");
                    }
                    else if (field.Value is not YamlTreeSequence { Items.Count: > 0 } list)
                    {
                        Error(LineOf(field), $"{owner}: 'tables' must be a non-empty list of table names, e.g. [public.orders]");
                    }
                    else
                    {
                        var seen = new Dictionary<string, TablePattern>(StringComparer.Ordinal);
                        foreach (var item in list.Items)
                        {
                            YamlTreeScalar scalar;
                            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>>? entryFields = null;
                            if (item is YamlTreeMapping entry)
                            {
                                entryFields = ReadFields(entry, TableEntryKeys, $"{owner}, table entry at line {entry.Line}");
                                if (!entryFields.TryGetValue("name", out var nameField) || nameField.Value is not YamlTreeScalar { IsNull: false } n)
                                {
                                    Error(entry.Line, $"{owner}: a table entry written as a mapping needs 'name', e.g. {{ name: public.orders, conflicts: priority }}");
                                    continue;
                                }

                                scalar = n;
                            }
                            else if (item is YamlTreeScalar { IsNull: false } plain)
                            {
                                scalar = plain;
                            }
                            else
                            {
                                Error(item.Line, $"{owner}: each table entry must be a string like public.orders, or a mapping like {{ name: public.orders, conflicts: latest }}");
                                continue;
                            }

                            if (!TablePattern.TryParse(scalar.Value, scalar.Line, out var pattern, out var problem))
                            {
                                Error(scalar.Line, $"{owner}: {problem}");
                                continue;
                            }

                            var identity = Identity(pattern);
                            if (seen.TryGetValue(identity, out var first))
                            {
                                var firstAs = first.Text == pattern.Text ? string.Empty : $" as '{first.Text}'";
                                Error(scalar.Line, $"{owner}: table '{pattern.Text}' is listed twice (first{firstAs} at line {first.Line})");
                                continue;
                            }

                            seen.Add(identity, pattern);
                            tables.Add(pattern);
                            if (entryFields is not null
                                && Policy(entryFields, $"{owner}, table {pattern.Text}", nodes, policy ?? ConflictPolicy.Latest) is { } tablePolicy)
                            {
                                tablePolicies.Add(new TablePolicy(pattern, tablePolicy));
                            }
                        }
                    }
                }

                sets.Add(name, new SetConfig(name, tables, nameKey.Line)
                {
                    Mesh = mesh, Conflicts = policy, TablePolicies = tablePolicies, Ddl = ddl, SynchronousQuorum = quorum, SynchronousQuorumLine = quorumLine,
                });
            }
        }

        /// <summary>
        /// The conflict policy the fields describe, or null when they name none. Keys left out of a table entry come
        /// from <paramref name="inherited"/> (the set's policy).
        /// </summary>
        private ConflictPolicy? Policy(
            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields,
            string owner,
            OrderedDictionary<string, NodeConfig> nodes,
            ConflictPolicy? inherited)
        {
            var given = PolicyKeys.Where(fields.ContainsKey).ToList();
            if (given.Count == 0)
            {
                return null;
            }

            ConflictPolicyKind kind;
            if (!fields.TryGetValue("conflicts", out var kindField))
            {
                if (inherited is null)
                {
                    Error(LineOf(fields[given[0]]), $"{owner}: '{given[0]}' needs 'conflicts' (one of {string.Join(", ", ConflictPolicy.KindNames)})");
                    return null;
                }

                kind = inherited.Kind;
            }
            else if (kindField.Value is not YamlTreeScalar { IsNull: false } kindScalar || !ConflictPolicy.TryParseKind(kindScalar.Value, out kind))
            {
                var text = kindField.Value is YamlTreeScalar sc ? sc.Value : string.Empty;
                Error(LineOf(kindField), $"{owner}: 'conflicts' must be one of {string.Join(", ", ConflictPolicy.KindNames)}, not '{text}'"
                    + Suggestion(text, ConflictPolicy.KindNames));
                return null;
            }

            var priority = inherited?.Priority ?? [];
            if (fields.TryGetValue("priority", out var priorityField))
            {
                priority = NodeList(priorityField, owner, "priority", nodes, minimum: 1);
                if (kind != ConflictPolicyKind.Priority)
                {
                    Error(LineOf(priorityField), $"{owner}: 'priority' only applies to conflicts: priority (this is conflicts: {kind.ToString().ToLowerInvariant()})");
                }
            }
            else if (kind == ConflictPolicyKind.Priority && priority.Count == 0)
            {
                Error(LineOf(kindField), $"{owner}: conflicts: priority needs 'priority', the nodes in order of precedence, e.g. priority: [paris, lyon]");
            }

            var window = inherited?.Window ?? ConflictPolicy.DefaultWindow;
            if (fields.TryGetValue("conflict_window", out var windowField))
            {
                window = Duration(windowField, owner, "conflict_window", window);
            }

            var function = inherited?.Function;
            if (fields.TryGetValue("conflict_function", out var functionField))
            {
                function = null;
                if (functionField.Value is not YamlTreeScalar { IsNull: false } fn || !TablePattern.TryParse(fn.Value, fn.Line, out var fnName, out _) || fnName.IsPattern)
                {
                    Error(LineOf(functionField), $"{owner}: 'conflict_function' must be a schema-qualified function name, e.g. public.merge_counters");
                }
                else
                {
                    function = Sql.Qualified(fnName.Schema, fnName.Table);
                }

                if (kind != ConflictPolicyKind.Custom)
                {
                    Error(LineOf(functionField), $"{owner}: 'conflict_function' only applies to conflicts: custom");
                }
            }
            else if (kind == ConflictPolicyKind.Custom && function is null)
            {
                Error(LineOf(kindField), $"{owner}: conflicts: custom needs 'conflict_function', a function (conflict_type text, local jsonb, remote jsonb) returning jsonb");
            }

            return new ConflictPolicy(kind, priority, window, kind == ConflictPolicyKind.Custom ? function : null);
        }

        private MeshConfig? Mesh(KeyValuePair<YamlTreeScalar, YamlTreeNode> field, string owner, OrderedDictionary<string, NodeConfig> nodes)
        {
            var initialCopy = true;
            var copySchema = false;
            var copyWorkers = SubscriptionConfig.DefaultCopyWorkers;
            var list = field;
            if (field.Value is YamlTreeMapping mapping)
            {
                var meshOwner = $"{owner}, mesh";
                var fields = ReadFields(mapping, MeshKeys, meshOwner);
                initialCopy = Boolean(fields, "initial_copy", meshOwner, true);
                copySchema = Boolean(fields, "copy_schema", meshOwner, false);
                copyWorkers = Integer(fields, "copy_workers", meshOwner,
                    SubscriptionConfig.MinCopyWorkers, SubscriptionConfig.MaxCopyWorkers, SubscriptionConfig.DefaultCopyWorkers)!.Value;
                if (!fields.TryGetValue("nodes", out list))
                {
                    Error(mapping.Line, $"{meshOwner}: 'nodes' is required, e.g. mesh: {{ nodes: [paris, lyon, nice] }}");
                    return null;
                }
            }

            var members = NodeList(list, owner, "mesh", nodes, minimum: 2);
            return members.Count < 2 ? null : new MeshConfig(members, initialCopy, copyWorkers, copySchema, field.Key.Line);
        }

        /// <summary>A list of distinct, defined node names.</summary>
        private List<string> NodeList(
            KeyValuePair<YamlTreeScalar, YamlTreeNode> field, string owner, string key, OrderedDictionary<string, NodeConfig> nodes, int minimum)
        {
            var names = new List<string>();
            if (field.Value is not YamlTreeSequence list)
            {
                Error(LineOf(field), $"{owner}: '{key}' must be a list of node names, e.g. [paris, lyon]");
                return names;
            }

            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var item in list.Items)
            {
                if (item is not YamlTreeScalar { IsNull: false } scalar)
                {
                    Error(item.Line, $"{owner}: each entry of '{key}' must be a node name");
                    continue;
                }

                if (seen.TryGetValue(scalar.Value, out var firstLine))
                {
                    Error(scalar.Line, $"{owner}: node '{scalar.Value}' is listed twice in '{key}' (first at line {firstLine})");
                    continue;
                }

                seen.Add(scalar.Value, scalar.Line);
                if (!nodes.ContainsKey(scalar.Value))
                {
                    var defined = nodes.Count == 0 ? "(none)" : string.Join(", ", nodes.Keys);
                    Error(scalar.Line, $"{owner}: unknown node '{scalar.Value}' in '{key}'; defined nodes: {defined}" + Suggestion(scalar.Value, nodes.Keys));
                    continue;
                }

                names.Add(scalar.Value);
            }

            if (names.Count < minimum && seen.Count == names.Count)
            {
                Error(LineOf(field), $"{owner}: '{key}' needs at least {minimum} node(s)");
            }

            return names;
        }

        /// <summary>A duration such as 5s, 500ms, 2m or 1h (a bare number is seconds).</summary>
        private TimeSpan Duration(KeyValuePair<YamlTreeScalar, YamlTreeNode> field, string owner, string key, TimeSpan fallback)
        {
            if (field.Value is YamlTreeScalar { IsNull: false } scalar && TryParseDuration(scalar.Value, out var value) && value > TimeSpan.Zero)
            {
                return value;
            }

            var text = field.Value is YamlTreeScalar sc ? sc.Value : string.Empty;
            Error(LineOf(field), $"{owner}: '{key}' must be a positive duration such as 500ms, 5s, 2m or 1h, not '{text}'");
            return fallback;
        }

        /// <summary>
        /// The subscriptions a mesh implies: one per ordered pair of members, carrying every meshed set the pair
        /// shares. Members other than the seed copy from the seed and read the others from where that copy left them.
        /// </summary>
        private void GenerateMeshSubscriptions(OrderedDictionary<string, SetConfig> sets, OrderedDictionary<string, SubscriptionConfig> subscriptions)
        {
            var explicitPairs = subscriptions.Values.GroupBy(s => (s.From, s.To)).ToDictionary(g => g.Key, g => g.First());
            var generated = new OrderedDictionary<(string From, string To), (List<string> Sets, MeshConfig Mesh, SetConfig First)>();
            foreach (var set in sets.Values.Where(s => s.Mesh is not null))
            {
                var mesh = set.Mesh!;
                foreach (var from in mesh.Nodes)
                {
                    foreach (var to in mesh.Nodes.Where(n => n != from))
                    {
                        if (explicitPairs.TryGetValue((from, to), out var other))
                        {
                            Error(mesh.Line, $"set '{set.Name}': its mesh replicates '{from}' to '{to}', like subscription '{other.Name}' (line {other.Line}); "
                                + $"add set {set.Name} to that subscription's sets and leave '{from}' or '{to}' out of the mesh, or remove the subscription");
                            continue;
                        }

                        if (generated.TryGetValue((from, to), out var existing))
                        {
                            if (existing.Mesh.Seed != mesh.Seed || existing.Mesh.InitialCopy != mesh.InitialCopy)
                            {
                                Error(mesh.Line, $"set '{set.Name}': its mesh and the mesh of set '{existing.First.Name}' (line {existing.Mesh.Line}) both replicate '{from}' to '{to}' "
                                    + "but start from different first nodes or initial_copy settings; give both meshes the same first node and initial_copy, or merge the sets");
                                continue;
                            }

                            existing.Sets.Add(set.Name);
                            continue;
                        }

                        generated.Add((from, to), ([set.Name], mesh, set));
                    }
                }
            }

            foreach (var ((from, to), (setNames, mesh, first)) in generated)
            {
                var name = MeshConfig.SubscriptionName(from, to);
                if (subscriptions.TryGetValue(name, out var clash))
                {
                    Error(clash.Line, $"subscription '{name}': the name is taken by the subscription the mesh of set '{first.Name}' (line {mesh.Line}) generates; rename it");
                    continue;
                }

                if (name.Length > MaxGeneratedNameLength)
                {
                    Error(mesh.Line, $"set '{first.Name}': the mesh subscription name '{name}' is too long ({name.Length} characters; at most {MaxGeneratedNameLength}); use shorter node names");
                    continue;
                }

                var copies = mesh.InitialCopy && from == mesh.Seed;
                var join = mesh.InitialCopy && from != mesh.Seed && to != mesh.Seed
                    ? new MeshJoin(MeshConfig.SubscriptionName(mesh.Seed, to), MeshConfig.SubscriptionName(from, mesh.Seed))
                    : null;
                subscriptions.Add(name, new SubscriptionConfig(
                    name, from, to, setNames, copies, Forward: false, CopySchema: copies && mesh.CopySchema, mesh.CopyWorkers, mesh.Line)
                {
                    Generated = true,
                    Join = join,
                });
            }
        }

        /// <summary>Marks the sets some pair of nodes replicates both ways, and refuses loops that forward.</summary>
        private void MarkMultiMasterSets(OrderedDictionary<string, SetConfig> sets, OrderedDictionary<string, SubscriptionConfig> subscriptions)
        {
            var carried = new HashSet<(string From, string To, string Set)>();
            foreach (var sub in subscriptions.Values)
            {
                foreach (var set in sub.Sets)
                {
                    carried.Add((sub.From, sub.To, set));
                }
            }

            var multi = new HashSet<string>(StringComparer.Ordinal);
            foreach (var sub in subscriptions.Values)
            {
                foreach (var set in sub.Sets.Where(set => carried.Contains((sub.To, sub.From, set))))
                {
                    multi.Add(set);
                    if (sub.Forward)
                    {
                        Error(sub.Line, $"subscription '{sub.Name}': forward: true on a set replicated both ways between '{sub.From}' and '{sub.To}' ({set}) would send changes round in a loop; remove forward");
                    }
                }
            }

            foreach (var name in multi)
            {
                sets[name] = sets[name] with { MultiMaster = true };
            }
        }

        private void ValidateSubscriptions(
            YamlTreeNode section,
            OrderedDictionary<string, NodeConfig> nodes,
            OrderedDictionary<string, SetConfig> sets,
            OrderedDictionary<string, SubscriptionConfig> subscriptions,
            SubscriptionLimits defaultLimits,
            OrderedDictionary<string, StandbyConfig> standbys)
        {
            var pairs = new Dictionary<(string From, string To), SubscriptionConfig>();
            foreach (var (nameKey, value) in ReadEntries(section, "subscriptions", "subscription"))
            {
                var name = nameKey.Value;
                var owner = $"subscription '{name}'";
                if (value is YamlTreeScalar { IsNull: true })
                {
                    Error(nameKey.Line, $"{owner}: 'from', 'to' and 'sets' are required");
                    continue;
                }

                if (value is not YamlTreeMapping mapping)
                {
                    Error(value.Line, $"{owner} must be a mapping with the keys from, to and sets");
                    continue;
                }

                var fields = ReadFields(mapping, SubscriptionKeys, owner);
                var from = NodeReference(fields, "from", owner, nameKey.Line, nodes, standbys);
                var to = NodeReference(fields, "to", owner, nameKey.Line, nodes, standbys);
                if (from is not null && to is not null && from == to)
                {
                    Error(fields["to"].Value.Line, $"{owner}: a subscription cannot replicate a node to itself ('{from}')");
                }

                var setNames = SetReferences(fields, owner, nameKey.Line, sets);
                var initialCopy = Boolean(fields, "initial_copy", owner, SubscriptionConfig.DefaultInitialCopy);
                var forward = Boolean(fields, "forward", owner, SubscriptionConfig.DefaultForward);
                var copySchema = Boolean(fields, "copy_schema", owner, SubscriptionConfig.DefaultCopySchema);
                var copyWorkers = Integer(fields, "copy_workers", owner,
                    SubscriptionConfig.MinCopyWorkers, SubscriptionConfig.MaxCopyWorkers, SubscriptionConfig.DefaultCopyWorkers)!.Value;

                var synchronous = Boolean(fields, "synchronous", owner, SubscriptionConfig.DefaultSynchronous);
                TimeSpan? degradeAfter = null;
                if (fields.TryGetValue("degrade_after", out var degradeField))
                {
                    degradeAfter = Duration(degradeField, owner, "degrade_after", TimeSpan.FromSeconds(10));
                    if (!synchronous)
                    {
                        Error(degradeField.Key.Line, $"{owner}: 'degrade_after' only applies to a synchronous subscription; add synchronous: true or remove it");
                    }
                }

                var subscription = new SubscriptionConfig(
                    name, from ?? string.Empty, to ?? string.Empty, setNames,
                    initialCopy, forward, copySchema, copyWorkers, nameKey.Line)
                {
                    Limits = Limits(fields, owner, defaultLimits),
                    Synchronous = synchronous,
                    DegradeAfter = degradeAfter,
                    ApplyTimeout = ApplyTimeout(fields, owner),
                    MaxTransactionMemory = MaxTransactionMemory(fields, owner),
                };

                if (from is not null && to is not null && from != to)
                {
                    if (pairs.TryGetValue((from, to), out var other))
                    {
                        Error(nameKey.Line,
                            $"{owner} replicates '{from}' to '{to}', like subscription '{other.Name}' (line {other.Line}); "
                            + "use one subscription per pair of nodes and list all its sets there");
                    }
                    else
                    {
                        pairs.Add((from, to), subscription);
                    }
                }

                subscriptions.Add(name, subscription);
                var clash = standbys.Values.FirstOrDefault(sb => sb.SlotName == Sql.SlotName(name) || StandbyConfig.RewindSlotNameFor(sb.Name) == Sql.SlotName(name));
                if (clash is not null)
                {
                    Error(nameKey.Line, $"{owner}: its slot name {Sql.SlotName(name)} is a physical slot name of standby '{clash.Name}' (line {clash.Line}); rename one of them");
                }
            }
        }

        /// <summary><c>apply_timeout</c>: how long an apply statement may wait for a lock on the target.</summary>
        private TimeSpan ApplyTimeout(Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string owner)
        {
            if (!fields.TryGetValue("apply_timeout", out var field)) return SubscriptionConfig.DefaultApplyTimeout;
            if (field.Value is YamlTreeScalar { IsNull: false } scalar && ConfigUnits.TryParseDuration(scalar.Value, out var d) && d >= TimeSpan.FromMilliseconds(100))
                return d;
            Error(LineOf(field), $"{owner}: 'apply_timeout' must be {ConfigUnits.DurationHint}, at least 100ms"
                + (field.Value is YamlTreeScalar { IsNull: false } s ? $", not '{s.Value}'" : ""));
            return SubscriptionConfig.DefaultApplyTimeout;
        }

        /// <summary><c>max_transaction_memory</c>: above this a source transaction's changes go to a temporary file.</summary>
        private long MaxTransactionMemory(Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string owner)
        {
            if (!fields.TryGetValue("max_transaction_memory", out var field)) return SubscriptionConfig.DefaultMaxTransactionMemory;
            if (field.Value is YamlTreeScalar { IsNull: false } scalar && ConfigUnits.TryParseSize(scalar.Value, out var bytes) && bytes >= SubscriptionConfig.MinMaxTransactionMemory)
                return bytes;
            Error(LineOf(field), $"{owner}: 'max_transaction_memory' must be {ConfigUnits.SizeHint}, at least 1MB"
                + (field.Value is YamlTreeScalar { IsNull: false } s ? $", not '{s.Value}'" : ""));
            return SubscriptionConfig.DefaultMaxTransactionMemory;
        }

        private void ValidateStandbys(
            YamlTreeNode section,
            OrderedDictionary<string, NodeConfig> nodes,
            OrderedDictionary<string, StandbyConfig> standbys)
        {
            foreach (var (nameKey, value) in ReadEntries(section, "standbys", "standby"))
            {
                var name = nameKey.Value;
                var owner = $"standby '{name}'";
                if (nodes.TryGetValue(name, out var node))
                {
                    Error(nameKey.Line, $"{owner} has the name of node '{name}' (line {node.Line}); node and standby names must differ (a promoted standby becomes a node of the same name)");
                }

                if (value is not YamlTreeMapping mapping)
                {
                    Error(value is YamlTreeScalar { IsNull: true } ? nameKey.Line : value.Line,
                        $"{owner} must be a mapping with the keys from, pgdata, port and mode");
                    continue;
                }

                var fields = ReadFields(mapping, StandbyKeys, owner);
                var from = NodeReference(fields, "from", owner, nameKey.Line, nodes, standbys);
                var pgdata = AbsolutePath(fields, "pgdata", owner, nameKey.Line, required: true);
                var port = Integer(fields, "port", owner, 1, 65535, null, nameKey.Line);
                var host = Text(fields, "host", owner) ?? StandbyConfig.DefaultHost;
                var mode = Mode(fields, owner, nameKey.Line);
                var hot = Boolean(fields, "hot", owner, StandbyConfig.DefaultHot);
                var slot = Boolean(fields, "slot", owner, StandbyConfig.DefaultSlot);
                var archive = AbsolutePath(fields, "archive", owner, nameKey.Line, required: mode == StandbyMode.Archive);
                var delay = Delay(fields, owner);
                if (slot && mode == StandbyMode.Archive)
                {
                    Error(fields["slot"].Key.Line, $"{owner}: 'slot' needs mode streaming (a slot nobody streams from keeps the primary's WAL forever)");
                }

                if (pgdata is not null && archive is not null && IsSameOrInside(archive, pgdata))
                {
                    Error(fields["archive"].Value.Line, $"{owner}: 'archive' must be outside 'pgdata' ({pgdata})");
                }

                var standby = new StandbyConfig(name, from ?? string.Empty, pgdata ?? string.Empty, port ?? 0, host, mode ?? StandbyMode.Streaming,
                    hot, slot, archive, delay, nameKey.Line);
                foreach (var other in standbys.Values)
                {
                    if (pgdata is not null && other.PgData.Length > 0 && (IsSameOrInside(pgdata, other.PgData) || IsSameOrInside(other.PgData, pgdata)))
                    {
                        Error(fields["pgdata"].Value.Line, $"{owner}: 'pgdata' {pgdata} overlaps the data directory of standby '{other.Name}' (line {other.Line})");
                    }

                    if (port is not null && other.Port == port && other.Host == host)
                    {
                        Error(fields["port"].Value.Line, $"{owner}: port {port} on {host} is already the port of standby '{other.Name}' (line {other.Line})");
                    }
                }

                standbys.Add(name, standby);
            }
        }

        // ------------------------------------------------------------ standby fields

        private string? Text(Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string key, string owner)
        {
            if (!fields.TryGetValue(key, out var field))
            {
                return null;
            }

            if (field.Value is YamlTreeScalar { IsNull: false } scalar && !string.IsNullOrWhiteSpace(scalar.Value))
            {
                return scalar.Value;
            }

            Error(LineOf(field), $"{owner}: '{key}' must be a non-empty string");
            return null;
        }

        private string? AbsolutePath(
            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string key, string owner, int ownerLine, bool required)
        {
            if (!fields.ContainsKey(key))
            {
                if (required)
                {
                    Error(ownerLine, $"{owner}: '{key}' is required");
                }

                return null;
            }

            var text = Text(fields, key, owner);
            if (text is null)
            {
                return null;
            }

            if (!text.StartsWith('/'))
            {
                Error(fields[key].Value.Line, $"{owner}: '{key}' must be an absolute path, not '{text}'");
                return null;
            }

            return text.Length > 1 ? text.TrimEnd('/') : text;
        }

        private StandbyMode? Mode(Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string owner, int ownerLine)
        {
            if (!fields.TryGetValue("mode", out var field))
            {
                Error(ownerLine, $"{owner}: 'mode' is required (streaming or archive)");
                return null;
            }

            switch (field.Value)
            {
                case YamlTreeScalar { Value: "streaming" }:
                    return StandbyMode.Streaming;
                case YamlTreeScalar { Value: "archive" }:
                    return StandbyMode.Archive;
                case YamlTreeScalar { IsNull: false } scalar:
                    Error(scalar.Line, $"{owner}: 'mode' must be streaming or archive, not '{scalar.Value}'"
                        + Suggestion(scalar.Value, ["streaming", "archive"]));
                    return null;
                default:
                    Error(LineOf(field), $"{owner}: 'mode' must be streaming or archive");
                    return null;
            }
        }

        private string? Delay(Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string owner)
        {
            var text = Text(fields, "delay", owner);
            if (text is null)
            {
                return null;
            }

            if (!PgDuration.TryParse(text, out var normalized, out _, out var problem))
            {
                Error(fields["delay"].Value.Line, $"{owner}: 'delay' {problem}");
                return null;
            }

            return normalized;
        }

        private static bool IsSameOrInside(string path, string dir) =>
            path == dir || path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal);

        // ------------------------------------------------------------ subscription fields

        private string? NodeReference(
            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields,
            string key,
            string owner,
            int ownerLine,
            OrderedDictionary<string, NodeConfig> nodes,
            OrderedDictionary<string, StandbyConfig> standbys)
        {
            if (!fields.TryGetValue(key, out var field))
            {
                Error(ownerLine, $"{owner}: '{key}' is required");
                return null;
            }

            if (field.Value is not YamlTreeScalar { IsNull: false } scalar)
            {
                Error(LineOf(field), $"{owner}: '{key}' must be a node name");
                return null;
            }

            if (standbys.TryGetValue(scalar.Value, out var standby))
            {
                var hint = owner.StartsWith("standby", StringComparison.Ordinal)
                    ? $"a standby follows a node (cascading standbys are not supported): use '{standby.From}'"
                    : $"a standby only replays its primary's WAL (promote it first: navette standby promote {scalar.Value})";
                Error(scalar.Line, $"{owner}: '{scalar.Value}' in '{key}' is a standby (line {standby.Line}), not a node; {hint}");
                return null;
            }

            if (!nodes.ContainsKey(scalar.Value))
            {
                var defined = nodes.Count == 0 ? "(none)" : string.Join(", ", nodes.Keys);
                Error(scalar.Line, $"{owner}: unknown node '{scalar.Value}' in '{key}'; defined nodes: {defined}"
                    + Suggestion(scalar.Value, nodes.Keys));
                return null;
            }

            return scalar.Value;
        }

        private List<string> SetReferences(
            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields,
            string owner,
            int ownerLine,
            OrderedDictionary<string, SetConfig> sets)
        {
            var names = new List<string>();
            if (!fields.TryGetValue("sets", out var field))
            {
                Error(ownerLine, $"{owner}: 'sets' is required");
                return names;
            }

            if (field.Value is not YamlTreeSequence { Items.Count: > 0 } list)
            {
                Error(LineOf(field), $"{owner}: 'sets' must be a non-empty list of set names, e.g. [shop]");
                return names;
            }

            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var item in list.Items)
            {
                if (item is not YamlTreeScalar { IsNull: false } scalar)
                {
                    Error(item.Line, $"{owner}: each entry of 'sets' must be a set name");
                    continue;
                }

                var setName = scalar.Value;
                if (seen.TryGetValue(setName, out var firstLine))
                {
                    Error(scalar.Line, $"{owner}: set '{setName}' is listed twice (first at line {firstLine})");
                    continue;
                }

                seen.Add(setName, scalar.Line);
                if (!sets.ContainsKey(setName))
                {
                    var defined = sets.Count == 0 ? "(none)" : string.Join(", ", sets.Keys);
                    Error(scalar.Line, $"{owner}: unknown set '{setName}' in 'sets'; defined sets: {defined}"
                        + Suggestion(setName, sets.Keys));
                    continue;
                }

                names.Add(setName);
            }

            return names;
        }

        internal static bool TryParseDuration(string text, out TimeSpan value)
        {
            value = TimeSpan.Zero;
            var t = text.Trim();
            var (digits, scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
                : t.EndsWith('s') ? (t[..^1], 1.0)
                : t.EndsWith('m') ? (t[..^1], 60.0)
                : t.EndsWith('h') ? (t[..^1], 3600.0)
                : (t, 1.0);
            if (!double.TryParse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n) || double.IsInfinity(n * scale))
            {
                return false;
            }

            value = TimeSpan.FromSeconds(n * scale);
            return true;
        }

        private bool Boolean(
            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields,
            string key,
            string owner,
            bool defaultValue)
        {
            if (!fields.TryGetValue(key, out var field))
            {
                return defaultValue;
            }

            switch (field.Value)
            {
                case YamlTreeScalar { IsPlain: true, Value: "true" or "True" or "TRUE" }:
                    return true;
                case YamlTreeScalar { IsPlain: true, Value: "false" or "False" or "FALSE" }:
                    return false;
                case YamlTreeScalar { IsNull: true }:
                    Error(LineOf(field), $"{owner}: '{key}' must be true or false");
                    return defaultValue;
                case YamlTreeScalar { IsPlain: true } plain:
                    Error(plain.Line, $"{owner}: '{key}' must be true or false, not '{plain.Value}' (only YAML 1.2 booleans are accepted)");
                    return defaultValue;
                case YamlTreeScalar quoted:
                    Error(quoted.Line, $"{owner}: '{key}' must be true or false, without quotes");
                    return defaultValue;
                default:
                    Error(field.Value.Line, $"{owner}: '{key}' must be true or false");
                    return defaultValue;
            }
        }

        private int? Integer(
            Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields,
            string key,
            string owner,
            int min,
            int max,
            int? defaultValue,
            int ownerLine = 0)
        {
            if (!fields.TryGetValue(key, out var field))
            {
                if (defaultValue is null)
                {
                    Error(ownerLine, $"{owner}: '{key}' is required");
                }

                return defaultValue;
            }

            if (field.Value is YamlTreeScalar { IsPlain: true, IsNull: false } scalar)
            {
                var digits = scalar.Value.TrimStart('+', '-');
                if (digits.Length > 0 && digits.All(char.IsAsciiDigit)
                    && int.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                    && n >= min && n <= max)
                {
                    return n;
                }

                Error(scalar.Line, $"{owner}: '{key}' must be an integer from {min} to {max}, not '{scalar.Value}'");
                return defaultValue;
            }

            Error(LineOf(field), $"{owner}: '{key}' must be an integer from {min} to {max}");
            return defaultValue;
        }

        // ------------------------------------------------------------ generic helpers

        /// <summary>
        /// The entries of a nodes/sets/subscriptions section (name → definition), in file order, reporting
        /// non-mapping sections, duplicate names (the later one is dropped) and invalid names.
        /// </summary>
        private List<(YamlTreeScalar Name, YamlTreeNode Value)> ReadEntries(YamlTreeNode section, string sectionName, string kind)
        {
            var entries = new List<(YamlTreeScalar Name, YamlTreeNode Value)>();
            if (section is YamlTreeScalar { IsNull: true })
            {
                return entries;
            }

            if (section is not YamlTreeMapping mapping)
            {
                Error(section.Line, $"'{sectionName}' must be a mapping of {kind} names to {kind} definitions"
                    + (section is YamlTreeSequence ? ", not a list" : string.Empty));
                return entries;
            }

            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (key, value) in mapping.Pairs)
            {
                if (key is not YamlTreeScalar name)
                {
                    Error(key.Line, $"{kind} names must be plain strings");
                    continue;
                }

                if (seen.TryGetValue(name.Value, out var firstLine))
                {
                    Error(name.Line, $"duplicate {kind} '{name.Value}' (first defined at line {firstLine})");
                    continue;
                }

                seen.Add(name.Value, name.Line);
                foreach (var problem in NameProblems(kind, name.Value))
                {
                    Error(name.Line, problem);
                }

                entries.Add((name, value));
            }

            return entries;
        }

        /// <summary>
        /// The keys of a mapping with a fixed set of allowed keys, reporting unknown keys (with a suggestion)
        /// and duplicates (the later one is ignored).
        /// </summary>
        private Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> ReadFields(
            YamlTreeMapping mapping,
            string[] allowed,
            string? owner)
        {
            var where = owner is null ? "at the top level" : $"in {owner}";
            var fields = new Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>>(StringComparer.Ordinal);
            foreach (var (key, value) in mapping.Pairs)
            {
                if (key is not YamlTreeScalar scalar)
                {
                    Error(key.Line, $"keys {where} must be plain strings; allowed: {string.Join(", ", allowed)}");
                    continue;
                }

                if (fields.TryGetValue(scalar.Value, out var first))
                {
                    Error(scalar.Line, $"duplicate key '{scalar.Value}' {where} (first defined at line {first.Key.Line})");
                    continue;
                }

                if (!allowed.Contains(scalar.Value, StringComparer.Ordinal))
                {
                    Error(scalar.Line, $"unknown key '{scalar.Value}' {where}; allowed: {string.Join(", ", allowed)}"
                        + Suggestion(scalar.Value, allowed));
                    continue;
                }

                fields.Add(scalar.Value, new(scalar, value));
            }

            return fields;
        }

        /// <summary>The value's line, or the key's when the value is empty (YAML puts it wherever the next token is).</summary>
        private static int LineOf(KeyValuePair<YamlTreeScalar, YamlTreeNode> field) =>
            field.Value is YamlTreeScalar { IsNull: true } ? field.Key.Line : field.Value.Line;

        /// <summary>Two entries naming the same table(s): quoting only matters where it turns off a wildcard.</summary>
        private static string Identity(TablePattern p)
        {
            static string Part(string name, bool quoted) =>
                quoted && name.AsSpan().IndexOfAny('*', '?') >= 0 ? TablePattern.QuoteIdentifier(name) : name;

            return Part(p.Schema, p.SchemaQuoted) + "\0" + Part(p.Table, p.TableQuoted);
        }
    }
}
