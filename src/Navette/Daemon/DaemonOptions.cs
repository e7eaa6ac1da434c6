using Navette.Config;

namespace Navette.Daemon;

/// <summary>How <c>navette run</c> was asked to run, beyond the configuration file.</summary>
/// <param name="FollowConfig">
/// Re-read the file when it changes (what role changes rely on: they rewrite it, and the daemon runs the new
/// subscriptions). <c>navette run</c> follows its file; in-process daemons of tests only when they ask.
/// </param>
internal sealed record DaemonOptions(IReadOnlyCollection<string>? Only = null, HttpEndpoint? Http = null, string? HttpToken = null, bool FollowConfig = false)
{
    /// <summary>The workers' retry backoff (first wait, longest wait); null for 1 s doubling to 60 s. Tests shorten it.</summary>
    public (TimeSpan Min, TimeSpan Max)? RetryBackoff { get; init; }
}
