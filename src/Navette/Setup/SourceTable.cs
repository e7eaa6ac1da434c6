namespace Navette.Setup;

/// <summary>A table found on an origin node, with what decides whether it can be replicated.</summary>
/// <param name="Owned">The connected role owns the table (or is a member of its owner): needed to publish it.</param>
/// <param name="Readable">The connected role may SELECT from it: needed by the initial copy.</param>
internal sealed record SourceTable(string Schema, string Name, char Kind, char Persistence, char ReplicaIdentity, bool HasPrimaryKey, bool HasIdentityIndex,
    bool Owned = true, bool Readable = true)
{
    public string QualifiedName => Sql.Qualified(Schema, Name);
    public override string ToString() => $"{Schema}.{Name}";

    /// <summary>UPDATE and DELETE can be replicated only when the origin logs something identifying the row.</summary>
    public bool HasUsableIdentity => ReplicaIdentity switch
    {
        'f' => true,
        'i' => HasIdentityIndex,
        'd' => HasPrimaryKey,
        _ => false,
    };
}
