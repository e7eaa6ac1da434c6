using Navette.Config;

namespace Navette.Roles;

/// <summary>
/// How a change of origin rewrites the subscriptions of a one-way topology: those <see cref="Removed"/> (every
/// subscription from the old origin, and those on the path from it to the new one) and those <see cref="Added"/> (from
/// the new origin to the old one, and to every node a removed subscription fed). Every other subscription stays.
/// </summary>
internal sealed record RoleChange(string OldOrigin, string NewOrigin, IReadOnlyList<SubscriptionConfig> Removed, IReadOnlyList<SubscriptionConfig> Added)
{
    /// <summary>The subscription that brought the old origin's changes to the new one (its last hop).</summary>
    public required SubscriptionConfig IntoNewOrigin { get; init; }

    /// <summary>The configuration text with the change made: subscriptions removed and added, the old origin fenced if asked.</summary>
    public string Edit(string text, string file, NavetteConfig config, bool fenceOldOrigin)
    {
        foreach (var sub in Removed)
            text = ConfigFileEditor.RemoveSubscription(text, file, sub.Name);
        foreach (var sub in Added)
            text = ConfigFileEditor.SetSubscription(text, file, sub);
        if (fenceOldOrigin)
            text = ConfigFileEditor.SetNode(text, file, OldOrigin, config.Nodes[OldOrigin].ConnInfo, fenced: true);
        return text;
    }

    public string Describe() =>
        $"removes {string.Join(", ", Removed.Select(s => $"{s.Name} ({s.From} -> {s.To})"))}; adds {(Added.Count == 0 ? "none" : string.Join(", ", Added.Select(s => $"{s.Name} ({s.From} -> {s.To})")))}";
}

/// <summary>
/// Works out role changes on the configuration alone (no database): which node is the origin, and the subscriptions
/// after a switchover or failover. Only one-way topologies (one origin, each other node fed by exactly one
/// subscription, cascades included) are handled; meshes and many-to-one are refused with the reason.
/// </summary>
internal static class TopologyPlanner
{
    /// <summary>The single origin of the file's one-way topology, or an error saying why there is none.</summary>
    public static string OriginOf(NavetteConfig config)
    {
        var subs = config.Subscriptions.Values.ToList();
        if (subs.Count == 0)
            throw new NavetteException($"{config.SourcePath} defines no subscription: there is no origin to change");
        if (config.Sets.Values.FirstOrDefault(s => s.MultiMaster || s.Mesh is not null) is { } mesh)
            throw new NavetteException($"set {mesh.Name} is written on several nodes (a mesh or subscriptions both ways); switchover, failover and rejoin handle one-way topologies (one origin), where every node already takes writes in a mesh");
        foreach (var g in subs.GroupBy(s => s.To).Where(g => g.Count() > 1))
            throw new NavetteException($"node {g.Key} receives several subscriptions ({string.Join(", ", g.Select(s => s.Name))}); role changes handle one-way topologies where each replica has one origin (many-to-one is not one of them)");
        var targets = subs.Select(s => s.To).ToHashSet();
        var origins = subs.Select(s => s.From).Where(f => !targets.Contains(f)).Distinct().ToList();
        if (origins.Count != 1)
            throw new NavetteException(origins.Count == 0
                ? "every node of the subscriptions also receives one (a loop): there is no single origin"
                : $"the subscriptions have several origins ({string.Join(", ", origins)}); role changes handle one origin feeding replicas (cascades included)");
        return origins[0];
    }

    /// <summary>The subscription feeding <paramref name="node"/>, or null for the origin (or a node in no subscription).</summary>
    public static SubscriptionConfig? Parent(NavetteConfig config, string node) => config.Subscriptions.Values.FirstOrDefault(s => s.To == node);

    /// <summary>
    /// The subscriptions once <paramref name="to"/> is the origin. With <paramref name="keepOldOrigin"/> (switchover) the old
    /// origin becomes a replica of the new one; without it (failover) it leaves the topology.
    /// </summary>
    public static RoleChange Plan(NavetteConfig config, string to, bool keepOldOrigin)
    {
        var origin = OriginOf(config);
        if (!config.Nodes.TryGetValue(to, out var target))
            throw new NavetteException($"no node named {to} in {config.SourcePath}; defined: {string.Join(", ", config.Nodes.Keys)}");
        if (to == origin)
            throw new NavetteException($"node {to} is already the origin in {config.SourcePath}; nothing to change");
        if (target.Fenced)
            throw new NavetteException($"node {to} is fenced (it left the topology at a failover); run navette rejoin {to} first");
        var into = Parent(config, to)
                   ?? throw new NavetteException($"node {to} is in no subscription of {config.SourcePath}; it holds none of {origin}'s data to take over with");

        // The path from the origin down to the new one: each hop is removed, and what it fed is fed by the new origin.
        var path = new List<SubscriptionConfig>();
        for (var hop = into; ; hop = Parent(config, hop.From)!)
        {
            path.Add(hop);
            if (hop.From == origin) break;
            if (path.Count > config.Subscriptions.Count)
                throw new NavetteException($"the subscriptions above node {to} form a loop; fix {config.SourcePath}");
        }
        if (!keepOldOrigin && path.Count > 1)
            throw new NavetteException($"node {to} reads from {into.From}, not from the lost origin {origin}: its position cannot be compared with the origin's other replicas. " +
                                       $"Fail over to a direct replica of {origin} ({string.Join(", ", config.Subscriptions.Values.Where(s => s.From == origin).Select(s => s.To))}), then switchover to {to} if wanted");

        var removed = config.Subscriptions.Values.Where(s => s.From == origin).Concat(path).Distinct().ToList();
        var available = into.Sets.ToHashSet(StringComparer.Ordinal);
        var names = new Namer(config, removed);
        var added = new List<SubscriptionConfig>();
        if (keepOldOrigin)
            added.Add(New(names.For(to, origin), to, origin, into.Sets));
        foreach (var old in removed.Where(s => s.To != to && s.To != origin))
        {
            var missing = old.Sets.Where(s => !available.Contains(s)).ToList();
            if (missing.Count > 0)
                throw new NavetteException($"subscription {old.Name} carries set(s) {string.Join(", ", missing)} to {old.To}, which {to} does not receive ({into.Name} carries {string.Join(", ", into.Sets)}); " +
                                           $"{to} cannot feed {old.To} with them. Add them to {into.Name} first");
            added.Add(New(names.For(to, old.To), to, old.To, old.Sets));
        }
        return new RoleChange(origin, to, removed, added) { IntoNewOrigin = into };
    }

    /// <summary>The subscription that brings a fenced node back as a replica of <paramref name="origin"/>.</summary>
    public static SubscriptionConfig Rejoining(NavetteConfig config, string node, string origin, IReadOnlyList<string> sets) =>
        New(new Namer(config, []).For(origin, node), origin, node, sets);

    /// <summary>
    /// A subscription from the new origin: no initial copy (the node already holds the data, the role change positions
    /// it), no forward (the origin's own writes carry no replication origin).
    /// </summary>
    private static SubscriptionConfig New(string name, string from, string to, IReadOnlyList<string> sets) =>
        new(name, from, to, sets.ToList(), InitialCopy: false, Forward: false, CopySchema: false, SubscriptionConfig.DefaultCopyWorkers, Line: 0);

    /// <summary>
    /// Names new subscriptions the way the file already does (<c>a_to_b</c> gives <c>b_to_a</c>; default <c>b_a</c>),
    /// never reusing a name that stays in the file.
    /// </summary>
    private sealed class Namer
    {
        private readonly HashSet<string> _taken;
        private readonly string _separator;

        public Namer(NavetteConfig config, IReadOnlyList<SubscriptionConfig> removed)
        {
            _taken = config.Subscriptions.Keys.Except(removed.Select(r => r.Name)).ToHashSet(StringComparer.Ordinal);
            _separator = config.Subscriptions.Values
                .Where(s => s.Name.Length > s.From.Length + s.To.Length && s.Name.StartsWith(s.From, StringComparison.Ordinal) && s.Name.EndsWith(s.To, StringComparison.Ordinal))
                .Select(s => s.Name[s.From.Length..^s.To.Length])
                .Where(sep => sep.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_'))
                .GroupBy(sep => sep).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault() ?? "_";
        }

        public string For(string from, string to)
        {
            var name = from + _separator + to;
            if (name.Length > ConfigLoader.MaxNameLength)
                name = "sub_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(from + "\n" + to)))[..12];
            var candidate = name;
            for (var i = 2; _taken.Contains(candidate) || candidate.StartsWith("mesh_", StringComparison.Ordinal); i++)
                candidate = $"{name[..Math.Min(name.Length, ConfigLoader.MaxNameLength - 4)]}_{i}";
            _taken.Add(candidate);
            return candidate;
        }
    }
}
