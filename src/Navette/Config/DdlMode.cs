namespace Navette.Config;

/// <summary>How schema changes of a set's tables reach its replicas.</summary>
internal enum DdlMode
{
    /// <summary>DDL run on the origin by any client is captured by an event trigger and replayed in the stream.</summary>
    Auto,
    /// <summary>Only scripts given to <c>navette execute</c> are replayed (the default).</summary>
    Execute,
    /// <summary>Schema changes are the operator's business; <c>navette execute</c> is refused.</summary>
    None,
}
