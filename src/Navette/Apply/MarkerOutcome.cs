namespace Navette.Apply;

/// <summary>What the rest of a transaction's apply does after a marker was acted on.</summary>
internal enum MarkerOutcome
{
    Continue,
    /// <summary>A schema change ran: the target's tables must be looked up again.</summary>
    SchemaChanged,
    /// <summary>A <c>navette execute</c> script ran: the rest of its transaction is the script's own row changes, made again here.</summary>
    SchemaChangedSkipRest,
}
