using Npgsql.Replication.PgOutput.Messages;

namespace Navette.Capture;

/// <summary>A table as the origin described it in the stream (pgoutput Relation message).</summary>
internal sealed class SourceRelation
{
    public required uint Id { get; init; }
    public required string Schema { get; init; }
    public required string Name { get; init; }
    public required string[] Columns { get; init; }
    public required uint[] TypeOids { get; init; }
    /// <summary>The columns' type modifiers as the origin sent them (-1: none), e.g. the length of a varchar.</summary>
    public int[] TypeMods { get; init; } = [];
    /// <summary>Indexes of the columns that form the replica identity (key), empty for REPLICA IDENTITY FULL.</summary>
    public required int[] KeyColumns { get; init; }
    public required bool IdentityFull { get; init; }

    public string QualifiedName => Sql.Qualified(Schema, Name);

    public override string ToString() => $"{Schema}.{Name}";

    public static SourceRelation From(RelationMessage msg)
    {
        var n = msg.Columns.Count;
        var cols = new string[n];
        var oids = new uint[n];
        var mods = new int[n];
        var keys = new List<int>();
        for (var i = 0; i < n; i++)
        {
            var c = msg.Columns[i];
            cols[i] = c.ColumnName;
            oids[i] = c.DataTypeId;
            mods[i] = c.TypeModifier;
            if ((c.Flags & RelationMessage.Column.ColumnFlags.PartOfKey) != 0)
                keys.Add(i);
        }
        var full = msg.ReplicaIdentity == RelationMessage.ReplicaIdentitySetting.AllColumns;
        return new SourceRelation
        {
            Id = msg.RelationId, Schema = msg.Namespace, Name = msg.RelationName,
            Columns = cols, TypeOids = oids, TypeMods = mods, KeyColumns = full ? [] : keys.ToArray(), IdentityFull = full,
        };
    }

    public bool SameShape(SourceRelation other) =>
        Schema == other.Schema && Name == other.Name && IdentityFull == other.IdentityFull
        && Columns.AsSpan().SequenceEqual(other.Columns) && TypeOids.AsSpan().SequenceEqual(other.TypeOids)
        && KeyColumns.AsSpan().SequenceEqual(other.KeyColumns);
}
