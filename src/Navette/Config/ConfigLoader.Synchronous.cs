namespace Navette.Config;

internal static partial class ConfigLoader
{
    private sealed partial class Validator
    {
        /// <summary>
        /// <c>synchronous</c>, <c>synchronous_quorum</c> and <c>degrade_after</c> across the file: an origin has one
        /// synchronous_standby_names, so one quorum over all its synchronous subscriptions, and a quorum below all of
        /// them only means something when each of them carries every set the others carry.
        /// </summary>
        private void ValidateSynchronous(OrderedDictionary<string, SetConfig> sets, OrderedDictionary<string, SubscriptionConfig> subscriptions)
        {
            var synchronous = subscriptions.Values.Where(s => s.Synchronous && s.From.Length > 0).ToList();
            foreach (var set in sets.Values.Where(s => s.SynchronousQuorum is not null))
            {
                if (!synchronous.Any(s => s.Sets.Contains(set.Name)))
                {
                    Error(set.SynchronousQuorumLine, $"set '{set.Name}': 'synchronous_quorum' counts subscriptions with synchronous: true, and none carries this set; "
                        + "add synchronous: true to the subscriptions that must confirm its commits, or remove synchronous_quorum");
                }
            }

            foreach (var group in synchronous.GroupBy(s => s.From))
            {
                var origin = group.Key;
                var subs = group.ToList();
                var quorumSets = subs.SelectMany(s => s.Sets).Distinct().Select(n => sets[n]).Where(s => s.SynchronousQuorum is not null).ToList();
                var quorums = quorumSets.Select(s => s.SynchronousQuorum!.Value).Distinct().ToList();
                if (quorums.Count > 1)
                {
                    Error(quorumSets[0].SynchronousQuorumLine, $"node '{origin}': its synchronous subscriptions carry sets with different synchronous_quorum values ("
                        + string.Join(", ", quorumSets.Select(s => $"set '{s.Name}': {s.SynchronousQuorum} at line {s.SynchronousQuorumLine}"))
                        + "); a node has one synchronous_standby_names, hence one quorum for all its commits: give these sets the same synchronous_quorum");
                    continue;
                }

                if (quorums.Count == 0)
                {
                    continue; // every synchronous subscription of the node must confirm
                }

                var quorum = quorums[0];
                var first = quorumSets[0];
                if (quorum > subs.Count)
                {
                    Error(first.SynchronousQuorumLine, $"set '{first.Name}': synchronous_quorum {quorum} but only {subs.Count} subscription(s) with synchronous: true read from node '{origin}' "
                        + $"({string.Join(", ", subs.Select(s => s.Name))}); commits there would wait forever");
                    continue;
                }

                if (quorum < subs.Count)
                {
                    var carried = subs.SelectMany(s => s.Sets).Distinct().ToList();
                    foreach (var sub in subs)
                    {
                        var missing = carried.Where(c => !sub.Sets.Contains(c)).ToList();
                        if (missing.Count > 0)
                        {
                            Error(sub.Line, $"subscription '{sub.Name}': with synchronous_quorum {quorum} of {subs.Count} on node '{origin}' (set '{first.Name}', line {first.SynchronousQuorumLine}), "
                                + $"any of its synchronous subscriptions may be the ones that confirm a commit, so each must carry every set the others carry; this one lacks {string.Join(", ", missing)}");
                        }
                    }
                }
            }
        }
    }
}
