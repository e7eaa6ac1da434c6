namespace Navette.Consistency;

/// <summary>How compare cuts and checks tables.</summary>
internal sealed record CompareOptions
{
    /// <summary>Rows per range of the first pass.</summary>
    public int ChunkRows { get; init; } = 10_000;
    /// <summary>A differing range of at most this many rows is listed row by row; a larger one is split.</summary>
    public int DetailRows { get; init; } = 1_000;
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
