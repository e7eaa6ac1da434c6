using Microsoft.Extensions.Logging;
using Navette.Config;
using Navette.Setup;
using Navette.Sync;
using Npgsql;

namespace Navette.Consistency;

/// <summary>Which subscriptions and tables <c>navette compare</c> and <c>navette repair</c> look at.</summary>
internal sealed record CompareSelection(string? Set = null, string? Table = null, string? From = null, string? To = null, string? Subscription = null);

/// <summary>
/// <c>navette compare</c>: resolves the selection to subscriptions and their tables, and compares each table between
/// its subscription's origin and target (<see cref="InStreamComparer"/>).
/// </summary>
internal sealed class CompareRunner(NavetteConfig config, CompareOptions options, ILogger log)
{
    public async Task<List<CompareSubject>> SubjectsAsync(CompareSelection selection, CancellationToken ct)
    {
        var subs = config.Subscriptions.Values
            .Where(s => selection.Subscription is null || s.Name == selection.Subscription)
            .Where(s => selection.From is null || s.From == selection.From)
            .Where(s => selection.To is null || s.To == selection.To)
            .Where(s => selection.Set is null || s.Sets.Contains(selection.Set))
            .ToList();
        if (selection.Set is not null && !config.Sets.ContainsKey(selection.Set))
            throw new NavetteException($"no set named {selection.Set} in {config.SourcePath}; defined: {string.Join(", ", config.Sets.Keys)}");
        if (subs.Count == 0)
            throw new NavetteException($"no subscription in {config.SourcePath} matches" +
                                       (selection.From is not null || selection.To is not null ? $" --from {selection.From ?? "*"} --to {selection.To ?? "*"}" : "") +
                                       (selection.Set is not null ? $" --set {selection.Set}" : "") + "; navette status lists them");
        var subjects = new List<CompareSubject>();
        foreach (var sub in subs)
        {
            var originCs = config.Nodes[sub.From].ToNpgsqlConnectionString();
            await using var origin = new NpgsqlConnection(originCs);
            await origin.OpenAsync(ct);
            var sets = sub.Sets.Where(s => selection.Set is null || s == selection.Set).ToList();
            var tables = await PublishedTables.ReadAsync(origin, sets.Select(Sql.PublicationName).ToList(), ct);
            if (tables.Count == 0)
                throw new NavetteException($"subscription {sub.Name}: node {sub.From} publishes no table of {string.Join(", ", sets)}; run navette apply first");
            var targetWrites = config.Subscriptions.Values.Any(o => o.From == sub.To && o.Sets.Intersect(sub.Sets).Any());
            foreach (var t in tables)
            {
                if (selection.Table is not null && !TablePattern.Parse(selection.Table).Matches(t.Schema, t.Name)) continue;
                var key = await NodeInspector.KeyColumnsAsync(origin, new SourceTable(t.Schema, t.Name, 'r', 'p', 'd', true, false), ct);
                if (key is not { Length: > 0 })
                {
                    log.LogWarning("compare: {Table} has no primary key or replica identity index on {Node}; it is compared as a whole only", t, sub.From);
                    key = t.Columns;
                }
                subjects.Add(new CompareSubject(sub.Name, sub.From, sub.To, originCs, config.Nodes[sub.To].ToNpgsqlConnectionString(),
                    t.Schema, t.Name, key, t.Columns, targetWrites));
            }
        }
        if (selection.Table is not null && subjects.Count == 0)
            throw new NavetteException($"no table matching {selection.Table} in the selected subscriptions ({string.Join(", ", subs.Select(s => s.Name))})");
        return subjects;
    }

    public async Task<List<TableComparison>> RunAsync(CompareSelection selection, Action<string>? progress, CancellationToken ct)
    {
        var subjects = await SubjectsAsync(selection, ct);
        var results = new List<TableComparison>();
        foreach (var subject in subjects)
        {
            var run = Guid.NewGuid();
            var chunk = 0;
            var comparer = new RangeComparer(subject, options, c => InStreamProbe.OpenAsync(subject, options, run, () => Interlocked.Increment(ref chunk), c), log);
            var started = DateTime.UtcNow;
            TableComparison result;
            try
            {
                result = await comparer.CompareAsync(progress, ct);
            }
            finally
            {
                await InStreamProbe.CleanUpAsync(subject, run, "compare_request", "compare_result");
            }
            log.LogDebug("compare {Subscription} {Table}: {Result} in {Seconds:F1} s", subject.Subscription, subject.Name,
                result.Identical ? "identical" : $"{result.Differences.Count} difference(s)", (DateTime.UtcNow - started).TotalSeconds);
            results.Add(result);
        }
        return results;
    }
}
