using Npgsql;

namespace Navette.Apply;

/// <summary>
/// A target column as the applier writes and matches it. <see cref="CastType"/> is the schema-qualified pg_type
/// name without typmod: not format_type, whose "character" and "bit" mean char(1) and bit(1) in a cast and
/// would truncate or reject values. <see cref="OutputFunction"/> is the type's output function, which prints a
/// value exactly as pgoutput sent it (a ::text cast does not always: boolean gives "true", inet adds the
/// netmask, character trims its padding, xml keeps the declaration). <see cref="EqualityOperator"/> is the
/// equality of the type's (or a domain's base type's) default btree operator class, as <c>OPERATOR(schema.=)</c>,
/// or null when there is none (json, xml, geometric types).
/// </summary>
/// <remarks><see cref="Hashable"/>: the type (or a domain's base type, an array's element type) has a default hash
/// operator class, so compare can hash its binary value; other types are hashed through their text.</remarks>
internal sealed record TargetColumn(string CastType, string OutputFunction, string? EqualityOperator, bool IdentityAlways = false, bool Hashable = false);

/// <summary>A replicated table as it exists on the target: what the applier needs to write to it.</summary>
internal sealed class TargetTable
{
    public required string Schema { get; init; }
    public required string Name { get; init; }
    public required bool IsPartitioned { get; init; }
    /// <summary>Writable (not generated) columns by name.</summary>
    public required Dictionary<string, TargetColumn> Columns { get; init; }

    public string QualifiedName => Sql.Qualified(Schema, Name);

    /// <summary>GENERATED ALWAYS identity columns: inserts must say OVERRIDING SYSTEM VALUE, updates cannot set them.</summary>
    public bool HasIdentityAlways => Columns.Values.Any(c => c.IdentityAlways);

    /// <summary>
    /// navette.fence: a fence can reach a node by two paths (a diamond of subscriptions with forward), and its
    /// second arrival must not stop the subscription.
    /// </summary>
    public bool IsFence => Schema == "navette" && Name == "fence";

    /// <summary>The target relation for UPDATE and DELETE: ONLY, so an inheritance parent's children are not touched.</summary>
    public string OnlyName => IsPartitioned ? QualifiedName : "ONLY " + QualifiedName;

    public static async Task<TargetTable?> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string schema, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT c.relkind, a.attname, tn.nspname, t.typname, fn.nspname, f.proname, eq.nspname, eq.oprname, a.attidentity = 'a',
                   EXISTS (SELECT 1 FROM pg_opclass hc JOIN pg_am ham ON ham.oid = hc.opcmethod AND ham.amname = 'hash'
                            WHERE hc.opcdefault AND hc.opcintype IN (b.oid, b.typelem) AND b.typtype IN ('b', 'e')
                              AND (b.typelem = 0 OR b.typcategory = 'A'))
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              JOIN pg_type t ON t.oid = a.atttypid
              JOIN pg_type b ON b.oid = CASE t.typtype WHEN 'd' THEN t.typbasetype ELSE t.oid END
              JOIN pg_namespace tn ON tn.oid = t.typnamespace
              JOIN pg_proc f ON f.oid = t.typoutput
              JOIN pg_namespace fn ON fn.oid = f.pronamespace
              LEFT JOIN LATERAL (
                  SELECT opn.nspname, op.oprname
                    FROM pg_opclass oc
                    JOIN pg_am am ON am.oid = oc.opcmethod AND am.amname = 'btree'
                    JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amopstrategy = 3
                                   AND ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype
                    JOIN pg_operator op ON op.oid = ao.amopopr
                    JOIN pg_namespace opn ON opn.oid = op.oprnamespace
                   WHERE oc.opcdefault AND oc.opcintype = CASE t.typtype WHEN 'd' THEN t.typbasetype ELSE t.oid END
                   LIMIT 1) eq ON true
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
            // Operator names are symbols, never quoted; only the schema is an identifier.
            var equality = reader.IsDBNull(6) ? null : $"OPERATOR({Sql.Ident(reader.GetString(6))}.{reader.GetString(7)})";
            columns[reader.GetString(1)] = new TargetColumn(
                Sql.Qualified(reader.GetString(2), reader.GetString(3)), Sql.Qualified(reader.GetString(4), reader.GetString(5)), equality,
                reader.GetBoolean(8), reader.GetBoolean(9));
        }
        return columns.Count == 0 ? null : new TargetTable { Schema = schema, Name = name, IsPartitioned = partitioned, Columns = columns };
    }
}
