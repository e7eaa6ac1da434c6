namespace Navette.Config;

/// <summary>
/// How much WAL a subscription's slot may keep on its origin: above <see cref="WarnBytes"/> status, metrics and the
/// dashboard warn; above <see cref="LimitBytes"/> (when set) the daemon drops the slot rather than fill the disk.
/// </summary>
internal sealed record WalRetention(long WarnBytes, long? LimitBytes)
{
    public const long DefaultWarnBytes = 1L << 30;
    public static readonly WalRetention Default = new(DefaultWarnBytes, null);
}

/// <summary>The thresholds one subscription is watched against (the monitoring section's, or its own).</summary>
internal sealed record SubscriptionLimits(TimeSpan LagThreshold, WalRetention WalRetention)
{
    public static readonly TimeSpan DefaultLagThreshold = TimeSpan.FromSeconds(60);
    public static readonly SubscriptionLimits Default = new(DefaultLagThreshold, WalRetention.Default);
}

/// <summary>The <c>monitoring</c> section: the HTTP endpoint and the defaults of every subscription's limits.</summary>
internal sealed record MonitoringConfig(string? Http, string? HttpToken, SubscriptionLimits Limits, int Line)
{
    public static readonly MonitoringConfig Default = new(null, null, SubscriptionLimits.Default, 0);

    /// <summary>Never prints the token.</summary>
    public override string ToString() =>
        $"MonitoringConfig {{ Http = {Http}, HttpToken = {(HttpToken is null ? "(none)" : "********")}, Limits = {Limits}, Line = {Line} }}";
}
