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
    Task<(RangeSummary Origin, RangeSummary Target, int Unsettled)> ProbeAsync(string?[]? lower, string?[]? upper, IReadOnlyList<string?[]> innerBounds,
        bool detail, IReadOnlyList<int>? wanted, CancellationToken ct);

    /// <summary>Keys cutting the range in parts of about <paramref name="rowsPerPart"/> rows, read on the origin or the target.</summary>
    Task<List<string?[]>> BoundariesAsync(bool onOrigin, string?[]? lower, string?[]? upper, long rowsPerPart, CancellationToken ct);

    /// <summary>The origin's row estimate and its cut in parts of about <paramref name="rowsPerPart"/> rows.</summary>
    Task<(long Rows, List<string?[]> Bounds)> PlanAsync(long rowsPerPart, CancellationToken ct);
}

/// <summary>
/// Compares one table by key ranges. The table is cut in buckets of about <see cref="CompareOptions.DetailRows"/> rows,
/// probed <see cref="CompareOptions.BucketsPerRange"/> at a time (one statement per side summarises every bucket of a range);
/// the rows of the buckets that differ are listed (one request for the range) and compared, or a bucket cut again if it turned out larger. A range that
/// changed between the two summaries is asked for again, then probed bucket by bucket. Several workers
/// (<see cref="CompareOptions.Parallel"/>) probe ranges at once.
/// </summary>
internal sealed class RangeComparer(CompareSubject subject, CompareOptions options, Func<CancellationToken, Task<IRangeProbe>> openProbe, ILogger log)
{
    /// <param name="Suspects">For a target that also takes writes: the differences earlier passes over the range found
    /// (each must show again to count), and <paramref name="Passes"/> how many passes found them.</param>
    /// <param name="Wanted">For a detail request over a range cut in buckets: the buckets whose rows are listed.</param>
    private sealed record Item(string?[]? Lower, string?[]? Upper, IReadOnlyList<string?[]> Inner, bool Detail, int Attempt, HashSet<string>? Suspects = null, int Passes = 0,
        IReadOnlyList<int>? Wanted = null)
    {
        public string?[]? BucketLower(int b) => b == 0 ? Lower : Inner[b - 1];
        public string?[]? BucketUpper(int b) => b == Inner.Count ? Upper : Inner[b];
    }

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
                var (rows, bounds) = await planner.PlanAsync(options.DetailRows, ct);
                result.OriginRows = rows;
                result.Chunks = bounds.Count + 1;
                string?[]? lower = null;
                var per = Math.Max(1, options.BucketsPerRange);
                for (var i = 0; i <= bounds.Count; i += per)
                {
                    var inner = bounds.Skip(i).Take(per - 1).ToList();
                    var upper = i + per - 1 < bounds.Count ? bounds[i + per - 1] : null;
                    Enqueue(new Item(lower, upper, inner, Detail: false, Attempt: 0));
                    lower = upper;
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
        var (ours, theirs, unsettled) = await probe.ProbeAsync(item.Lower, item.Upper, item.Inner, item.Detail, item.Wanted, ct);
        var rows = Math.Max(ours.Rows, theirs.Rows);
        if (unsettled != 0)
        {
            // Rows changed between the two summaries. A range of several buckets is asked for again once, then bucket
            // by bucket (each less likely to be written again meanwhile); a small one is asked for again.
            if (!item.Detail && item.Inner.Count > 0 && item.Attempt >= 1)
            {
                for (var b = 0; b <= item.Inner.Count; b++)
                    Enqueue(new Item(item.BucketLower(b), item.BucketUpper(b), [], Detail: false, Attempt: 0, item.Suspects, item.Passes));
                return;
            }
            if (!item.Detail && item.Inner.Count == 0 && rows > options.DetailRows)
            {
                await SplitAsync(probe, item.Lower, item.Upper, ours, theirs, item, ct);
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
        if (!item.Detail)
        {
            // The rows of the small differing buckets are listed by one request per range (a few, when many rows).
            var wanted = new List<int>();
            long wantedRows = 0;
            for (var b = 0; b <= item.Inner.Count; b++)
            {
                var o = ours.Bucket(b);
                var t = theirs.Bucket(b);
                if (o == t) continue;
                var bucketRows = Math.Max(o.Rows, t.Rows);
                if (bucketRows > options.DetailRows)
                {
                    await SplitAsync(probe, item.BucketLower(b), item.BucketUpper(b), o.Rows >= t.Rows, bucketRows, item, ct);
                    continue;
                }
                if (wanted.Count > 0 && wantedRows + bucketRows > options.DetailMaxRows)
                {
                    EnqueueDetail(item, wanted);
                    wanted = [];
                    wantedRows = 0;
                }
                wanted.Add(b);
                wantedRows += bucketRows;
            }
            if (wanted.Count > 0) EnqueueDetail(item, wanted);
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

    private void EnqueueDetail(Item range, List<int> buckets)
    {
        if (buckets.Count == 1 || range.Inner.Count == 0)
            Enqueue(new Item(range.BucketLower(buckets[0]), range.BucketUpper(buckets[0]), [], Detail: true, Attempt: 0, range.Suspects, range.Passes));
        else
            Enqueue(new Item(range.BucketLower(buckets[0]), range.BucketUpper(buckets[^1]), range.Inner, Detail: true, Attempt: 0, range.Suspects, range.Passes, buckets));
    }

    private Task SplitAsync(IRangeProbe probe, string?[]? lower, string?[]? upper, RangeSummary ours, RangeSummary theirs, Item parent, CancellationToken ct) =>
        SplitAsync(probe, lower, upper, ours.Rows >= theirs.Rows, Math.Max(ours.Rows, theirs.Rows), parent, ct);

    /// <summary>Cuts a range again, on the side that has the rows (the origin, unless the target holds rows the origin does not).</summary>
    private async Task SplitAsync(IRangeProbe probe, string?[]? lower, string?[]? upper, bool onOrigin, long rows, Item parent, CancellationToken ct)
    {
        var inner = await probe.BoundariesAsync(onOrigin, lower, upper, Math.Max(1, rows / options.SplitInto), ct);
        Enqueue(new Item(lower, upper, inner, Detail: false, Attempt: 0, parent.Suspects, parent.Passes));
    }

    private static string Identity(RowDifference d) => d.Kind + "\u001e" + string.Join("\u001f", d.Key.Select(k => k ?? "\u0000"));

}
