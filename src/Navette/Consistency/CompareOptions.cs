namespace Navette.Consistency;

/// <summary>How compare cuts and checks tables.</summary>
internal sealed record CompareOptions
{
    /// <summary>Rows per bucket: a differing bucket of at most this many rows is listed row by row; a larger one is split.</summary>
    public int DetailRows { get; init; } = 250;
    /// <summary>Buckets one request of the first pass summarises.</summary>
    public int BucketsPerRange { get; init; } = 200;
    /// <summary>Rows one detail request lists at most (the differing buckets of a range, together).</summary>
    public int DetailMaxRows { get; init; } = 20_000;
    /// <summary>Parts a bucket found larger than <see cref="DetailRows"/> is cut in.</summary>
    public int SplitInto { get; init; } = 10;
    /// <summary>Requests in flight at once, per table.</summary>
    public int Parallel { get; init; } = 4;
    /// <summary>Tables up to this many rows are cut exactly; larger ones from a sample of their pages.</summary>
    public long ExactPlanningRows { get; init; } = 1_000_000;
    public int MaxAttempts { get; init; } = 8;
    public TimeSpan ResultTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Where the target also takes writes (a mesh): passes a difference must show on, this long apart.</summary>
    public int ConfirmPasses { get; init; } = 3;
    public TimeSpan ConfirmDelay { get; init; } = TimeSpan.FromSeconds(1);
}
