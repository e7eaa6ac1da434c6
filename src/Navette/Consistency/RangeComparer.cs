using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Navette.Consistency;

/// <summary>How one worker of a comparison reads a key range on both nodes at the same logical moment.</summary>
internal interface IRangeProbe : IAsyncDisposable
{
    /// <summary>
    /// Summarises the range on the origin and on the target. <c>Unsettled</c> is non-zero when the two summaries do not
    /// describe the same moment for some rows (changed in between), -1 when that cannot be told.
    /// </summary>
    Task<(RangeSummary Origin, RangeSummary Target, int Unsettled)> ProbeAsync(string?[]? lower, string?[]? upper, bool detail, CancellationToken ct);

    /// <summary>Keys cutting the range in parts of about <paramref name="rowsPerPart"/> rows, read on the origin or the target.</summary>
    Task<List<string?[]>> BoundariesAsync(bool onOrigin, string?[]? lower, string?[]? upper, long rowsPerPart, CancellationToken ct);

    /// <summary>The origin's row estimate and first cut of the table.</summary>
    Task<(long Rows, List<string?[]> Bounds)> PlanAsync(CancellationToken ct);
}

/// <summary>
/// Compares one table by key ranges: every range is summarised on both nodes; ranges that differ are split until they
/// are small enough to list row by row, and the rows compared. Ranges that changed between the two summaries are split
/// or asked for again. Several workers (<see cref="CompareOptions.Parallel"/>) probe ranges at once.
/// </summary>
internal sealed class RangeComparer(CompareSubject subject, CompareOptions options, Func<CancellationToken, Task<IRangeProbe>> openProbe, ILogger log)
{
    /// <param name="Suspects">For a target that also takes writes: the differences earlier passes over the range found
    /// (each must show again to count), and <paramref name="Passes"/> how many passes found them.</param>
    private sealed record Item(string?[]? Lower, string?[]? Upper, bool Detail, int Attempt, HashSet<string>? Suspects = null, int Passes = 0);

    private int _outstanding;
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>();
    private readonly ConcurrentBag<RowDifference> _differences = new();
    private int _unsettled;
    private long _rangesDone;

    public async Task<TableComparison> CompareAsync(Action<string>? progress, CancellationToken ct)
    {
        var result = new TableComparison(subject);
        try
        {
            await using (var planner = await openProbe(ct))
            {
                var (rows, bounds) = await planner.PlanAsync(ct);
                result.OriginRows = rows;
                result.Chunks = bounds.Count + 1;
                string?[]? lower = null;
                foreach (var b in bounds.Append(null))
                {
                    Enqueue(new Item(lower, b, Detail: false, Attempt: 0));
                    lower = b;
                }
            }
            var workers = Enumerable.Range(0, Math.Max(1, options.Parallel)).Select(_ => Task.Run(() => WorkerAsync(ct), ct)).ToList();
            using var timer = progress is null ? null : new Timer(_ => progress($"{subject.Name}: {Interlocked.Read(ref _rangesDone)} range(s) compared, {_differences.Count} difference(s) so far"),
                null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));
            await Task.WhenAll(workers);
            result.Differences.AddRange(_differences.OrderBy(d => d.Kind).ThenBy(d => string.Join("\u001f", d.Key), StringComparer.Ordinal));
            result.UnsettledRanges = _unsettled;
        }
        catch (Exception e) when (e is NavetteException or NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
        {
            result.Error = e is NpgsqlException ? Daemon.SubscriptionWorker.Describe(e) : e.Message;
        }
        return result;
    }

    private void Enqueue(Item item)
    {
        Interlocked.Increment(ref _outstanding);
        _queue.Writer.TryWrite(item);
    }

    private async Task WorkerAsync(CancellationToken ct)
    {
        await using var probe = await openProbe(ct);
        await foreach (var item in _queue.Reader.ReadAllAsync(ct))
        {
            try
            {
                await ProcessAsync(probe, item, ct);
            }
            catch
            {
                _queue.Writer.TryComplete();
                throw;
            }
            Interlocked.Increment(ref _rangesDone);
            if (Interlocked.Decrement(ref _outstanding) == 0) _queue.Writer.TryComplete();
        }
    }

    private async Task ProcessAsync(IRangeProbe probe, Item item, CancellationToken ct)
    {
        var (ours, theirs, unsettled) = await probe.ProbeAsync(item.Lower, item.Upper, item.Detail, ct);
        var rows = Math.Max(ours.Rows, theirs.Rows);
        if (unsettled != 0)
        {
            // Rows changed between the two summaries: a large range is split (its parts are less likely to be written
            // again meanwhile), a small one asked for again.
            if (rows > options.DetailRows)
            {
                await SplitAsync(probe, item, ours, theirs, ct);
                return;
            }
            if (item.Attempt + 1 >= options.MaxAttempts)
            {
                Interlocked.Increment(ref _unsettled);
                log.LogWarning("compare {Table}: a range changed under each of {Attempts} attempts to compare it; compare again when the writes calm down",
                    subject.Name, options.MaxAttempts);
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50 * (item.Attempt + 1)), ct);
            Enqueue(item with { Attempt = item.Attempt + 1 });
            return;
        }
        if (ours.SameAs(theirs)) return;
        if (!item.Detail)
        {
            if (rows <= options.DetailRows)
                Enqueue(item with { Detail = true, Attempt = 0 });
            else
                await SplitAsync(probe, item, ours, theirs, ct);
            return;
        }
        var found = ours.Diff(theirs);
        if (item.Suspects is not null)
            found = found.Where(d => item.Suspects.Contains(Identity(d))).ToList();
        if (found.Count == 0) return;
        if (subject.TargetWrites && item.Passes + 1 < options.ConfirmPasses)
        {
            // The target also takes writes of its own (a mesh), and changes from the other members reach the two nodes at
            // different moments: a difference counts only if the same row differs the same way on every pass.
            await Task.Delay(options.ConfirmDelay, ct);
            Enqueue(item with { Attempt = 0, Suspects = found.Select(Identity).ToHashSet(), Passes = item.Passes + 1 });
            return;
        }
        foreach (var d in found) _differences.Add(d);
    }

    private static string Identity(RowDifference d) => d.Kind + "\u001e" + string.Join("\u001f", d.Key.Select(k => k ?? "\u0000"));

    /// <summary>Cuts the range in parts, on the side that has the rows (the origin, unless the target holds rows the origin does not).</summary>
    private async Task SplitAsync(IRangeProbe probe, Item item, RangeSummary ours, RangeSummary theirs, CancellationToken ct)
    {
        var rows = Math.Max(ours.Rows, theirs.Rows);
        var bounds = await probe.BoundariesAsync(ours.Rows >= theirs.Rows, item.Lower, item.Upper, Math.Max(1, rows / options.SplitInto), ct);
        var lower = item.Lower;
        foreach (var b in bounds.Append(item.Upper))
        {
            Enqueue(new Item(lower, b, Detail: false, Attempt: 0));
            lower = b;
        }
    }
}
