namespace Navette.Conflicts;

/// <summary>What an incoming change found on the target instead of what it expected.</summary>
internal enum ConflictType
{
    /// <summary>An INSERT whose key already exists.</summary>
    InsertExists,
    /// <summary>An INSERT of a key deleted here by another node.</summary>
    InsertDeleted,
    /// <summary>An UPDATE of a row last changed by another node than the one the change comes from.</summary>
    UpdateUpdate,
    /// <summary>An UPDATE of a row that does not exist (never arrived yet, or deleted too long ago to remember).</summary>
    UpdateMissing,
    /// <summary>An UPDATE of a row deleted here by another node.</summary>
    UpdateDelete,
    /// <summary>A DELETE of a row last changed by another node.</summary>
    DeleteUpdate,
    /// <summary>A DELETE of a row that does not exist.</summary>
    DeleteMissing,
}

internal static class ConflictTypeNames
{
    public static string Name(this ConflictType type) => type switch
    {
        ConflictType.InsertExists => "insert_exists",
        ConflictType.InsertDeleted => "insert_deleted",
        ConflictType.UpdateUpdate => "update_update",
        ConflictType.UpdateMissing => "update_missing",
        ConflictType.UpdateDelete => "update_delete",
        ConflictType.DeleteUpdate => "delete_update",
        ConflictType.DeleteMissing => "delete_missing",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static IReadOnlyList<string> All { get; } = Enum.GetValues<ConflictType>().Select(t => t.Name()).ToArray();
}
