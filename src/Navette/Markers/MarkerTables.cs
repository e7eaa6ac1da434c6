using Navette.Capture;

namespace Navette.Markers;

/// <summary>
/// The navette tables whose rows are in-stream markers: published with every set, their inserts are not written on
/// the target as rows but acted on by the applier at the exact point of the stream where they arrive.
/// </summary>
internal static class MarkerTables
{
    public const string Schema = "navette";
    public const string Fence = "fence";
    public const string CompareRequest = "compare_request";
    public const string RepairRequest = "repair_request";
    public const string Ddl = "ddl";
    public const string SequenceValues = "sequence_values";

    /// <summary>Published with every set (fences are plain rows; the others are acted on).</summary>
    public static readonly string[] Published = [Fence, CompareRequest, RepairRequest, Ddl, SequenceValues];

    /// <summary>A marker the applier acts on, which must be applied alone, after everything before it committed.</summary>
    public static bool IsAction(SourceRelation rel) => rel.Schema == Schema && rel.Name is CompareRequest or RepairRequest or Ddl or SequenceValues;

    public static bool HasAction(SourceTransaction tx)
    {
        if (tx.Spilled is { } spilled) return spilled.HasAction;
        foreach (var c in tx.Changes)
            if (IsAction(c.Relation)) return true;
        return false;
    }
}
