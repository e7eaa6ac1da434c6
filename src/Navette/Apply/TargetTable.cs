using Npgsql;

namespace Navette.Apply;

/// <summary>A replicated table as it exists on the target: what the applier needs to write to it.</summary>
internal sealed class TargetTable
{
    public required string Schema { get; init; }
    public required string Name { get; init; }
    public required bool IsPartitioned { get; init; }
    /// <summary>Column name → SQL type name (format_type without typmod, usable in a cast).</summary>
    public required Dictionary<string, string> ColumnTypes { get; init; }

    public string QualifiedName => Sql.Qualified(Schema, Name);

    public static async Task<TargetTable?> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string schema, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT c.relkind, a.attname, format_type(a.atttypid, NULL)
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
             ORDER BY a.attnum
            """, conn, tx);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(name);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var partitioned = false;
        while (await reader.ReadAsync(ct))
        {
            partitioned = reader.GetChar(0) == 'p';
            types[reader.GetString(1)] = reader.GetString(2);
        }
        return types.Count == 0 ? null : new TargetTable { Schema = schema, Name = name, IsPartitioned = partitioned, ColumnTypes = types };
    }
}
