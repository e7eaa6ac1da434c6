using Navette.Config;

namespace Navette.Daemon;

/// <summary>How <c>navette run</c> was asked to run, beyond the configuration file.</summary>
internal sealed record DaemonOptions(IReadOnlyCollection<string>? Only = null, HttpEndpoint? Http = null, string? HttpToken = null);
