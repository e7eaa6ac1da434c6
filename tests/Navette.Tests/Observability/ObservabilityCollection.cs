using Xunit;

namespace Navette.Tests.Observability;

/// <summary>
/// The observability tests each start clusters, a daemon process and some a browser: run one at a time, so that
/// together they do not starve the timing-sensitive tests that run beside them on two cores.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ObservabilityCollection
{
    public const string Name = "observability";
}
