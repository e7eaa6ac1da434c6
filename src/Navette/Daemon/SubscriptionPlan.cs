namespace Navette.Daemon;

/// <summary>Everything a worker needs to run one subscription, resolved from the configuration.</summary>
internal sealed record SubscriptionPlan(
    string Name,
    string FromNode,
    string ToNode,
    string SourceConnectionString,
    string TargetConnectionString,
    IReadOnlyList<string> Publications,
    bool InitialCopy,
    bool Forward,
    int CopyWorkers);
