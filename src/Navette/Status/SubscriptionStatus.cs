namespace Navette.Status;

/// <summary>One subscription as <c>navette status</c> reports it (also its JSON shape).</summary>
internal sealed record SubscriptionStatus(
    string Name,
    string From,
    string To,
    string State,
    string? Error,
    long? LagBytes,
    double? LagSeconds,
    DateTime? LastCommitTime,
    string? AppliedLsn,
    long RowsApplied,
    long TransactionsApplied,
    double RowsPerSecond,
    long? RetainedWalBytes,
    bool SlotActive);
