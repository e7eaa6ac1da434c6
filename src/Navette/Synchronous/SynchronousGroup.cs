using Navette.Config;

namespace Navette.Synchronous;

/// <summary>
/// The synchronous subscriptions reading from one origin node and how many of them must confirm each commit there
/// (<c>synchronous_quorum</c> of their sets, else all of them).
/// </summary>
internal sealed record SynchronousGroup(string Origin, IReadOnlyList<SubscriptionConfig> Subscriptions, int Quorum)
{
    /// <summary>The names navette lists for them: their walsenders' application_name.</summary>
    public IReadOnlyList<string> Names => Subscriptions.Select(s => Sql.ApplicationName(s.Name)).ToList();

    public bool ExplicitQuorum { get; init; }

    /// <summary>One group per node that synchronous subscriptions read from, in file order.</summary>
    public static IReadOnlyDictionary<string, SynchronousGroup> For(NavetteConfig config)
    {
        var groups = new Dictionary<string, SynchronousGroup>(StringComparer.Ordinal);
        foreach (var g in config.Subscriptions.Values.Where(s => s.Synchronous).GroupBy(s => s.From))
        {
            var subs = g.ToList();
            // The loader refused differing quorums for one origin.
            var quorum = subs.SelectMany(s => s.Sets).Distinct().Select(n => config.Sets[n].SynchronousQuorum).FirstOrDefault(q => q is not null);
            groups[g.Key] = new SynchronousGroup(g.Key, subs, quorum ?? subs.Count) { ExplicitQuorum = quorum is not null };
        }
        return groups;
    }

    /// <summary>"ANY 1 of 2" or "all 2".</summary>
    public string Describe() => Quorum == Subscriptions.Count
        ? (Subscriptions.Count == 1 ? "its 1 synchronous subscription" : $"all {Subscriptions.Count} synchronous subscriptions")
        : $"any {Quorum} of {Subscriptions.Count} synchronous subscriptions";
}
