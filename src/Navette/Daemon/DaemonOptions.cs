using Navette.Config;

namespace Navette.Daemon;

/// <summary>How <c>navette run</c> was asked to run, beyond the configuration file.</summary>
internal sealed record DaemonOptions(IReadOnlyCollection<string>? Only = null, HttpEndpoint? Http = null, string? HttpToken = null)
{
    /// <summary>The workers' retry backoff (first wait, longest wait); null for 1 s doubling to 60 s. Tests shorten it.</summary>
    public (TimeSpan Min, TimeSpan Max)? RetryBackoff { get; init; }
}
