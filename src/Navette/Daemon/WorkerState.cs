namespace Navette.Daemon;

/// <summary>The states of a subscription, as stored in navette.subscription on its target.</summary>
internal static class WorkerState
{
    public const string Initializing = "initializing";
    public const string Copying = "copying";
    public const string Streaming = "streaming";
    public const string Stopped = "stopped";
    public const string Failed = "failed";
}
