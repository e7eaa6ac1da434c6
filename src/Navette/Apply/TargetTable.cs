using Npgsql;

namespace Navette.Apply;

/// <summary>
/// A target column as the applier writes and matches it. <see cref="CastType"/> is the schema-qualified pg_type
/// name without typmod: not format_type, whose "character" and "bit" mean char(1) and bit(1) in a cast and
/// would truncate or reject values. <see cref="OutputFunction"/> is the type's output function, which prints a
/// value exactly as pgoutput sent it (a ::text cast does not always: boolean gives "true", inet adds the
/// netmask, character trims its padding, xml keeps the declaration). <see cref="HasBtreeEquality"/>: the type
/// (or a domain's base type) has a default btree operator class, so its = can use an index.
/// </summary>
internal sealed record TargetColumn(string CastType, string OutputFunction, bool HasBtreeEquality);

/// <summary>A replicated table as it exists on the target: what the applier needs to write to it.</summary>
internal sealed class TargetTable
{
    public required string Schema { get; init; }
    public required string Name { get; init; }
    public required bool IsPartitioned { get; init; }
    /// <summary>Writable (not generated) columns by name.</summary>
    public required Dictionary<string, TargetColumn> Columns { get; init; }

    public string QualifiedName => Sql.Qualified(Schema, Name);

    public static async Task<TargetTable?> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string schema, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT c.relkind, a.attname, tn.nspname, t.typname, fn.nspname, f.proname,
                   EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
                            WHERE am.amname = 'btree' AND oc.opcdefault
                              AND oc.opcintype = CASE t.typtype WHEN 'd' THEN t.typbasetype ELSE t.oid END)
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              JOIN pg_type t ON t.oid = a.atttypid
              JOIN pg_namespace tn ON tn.oid = t.typnamespace
              JOIN pg_proc f ON f.oid = t.typoutput
              JOIN pg_namespace fn ON fn.oid = f.pronamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
             ORDER BY a.attnum
            """, conn, tx);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(name);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var columns = new Dictionary<string, TargetColumn>(StringComparer.Ordinal);
        var partitioned = false;
        while (await reader.ReadAsync(ct))
        {
            partitioned = reader.GetChar(0) == 'p';
            columns[reader.GetString(1)] = new TargetColumn(
                Sql.Qualified(reader.GetString(2), reader.GetString(3)), Sql.Qualified(reader.GetString(4), reader.GetString(5)), reader.GetBoolean(6));
        }
        return columns.Count == 0 ? null : new TargetTable { Schema = schema, Name = name, IsPartitioned = partitioned, Columns = columns };
    }
}
