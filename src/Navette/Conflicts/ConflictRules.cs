using Navette.Capture;
using Navette.Config;

namespace Navette.Conflicts;

/// <summary>The conflict policy of each table a subscription carries (null: changes are applied without detection).</summary>
internal sealed class ConflictRules(IReadOnlyList<(SetConfig Set, bool Resolves)> sets)
{
    private readonly Dictionary<SourceRelation, ConflictPolicy?> _cache = new();

    public static ConflictRules? For(NavetteConfig config, SubscriptionConfig sub)
    {
        var sets = sub.Sets.Select(s => (config.Sets[s], config.ResolvesConflicts(sub, s))).ToList();
        return sets.Any(s => s.Item2) ? new ConflictRules(sets) : null;
    }

    public ConflictPolicy? PolicyFor(SourceRelation rel)
    {
        if (_cache.TryGetValue(rel, out var known)) return known;
        var policy = PolicyFor(rel.Schema, rel.Name);
        // Without a key there is nothing to detect a conflict on (navette apply refuses such tables in a mesh).
        if (rel.IdentityFull || rel.KeyColumns.Length == 0) policy = null;
        return _cache[rel] = policy;
    }

    public ConflictPolicy? PolicyFor(string schema, string table) =>
        sets.FirstOrDefault(s => s.Set.Matches(schema, table)) is ({ } set, true) ? set.PolicyFor(schema, table) : null;
}
