using Navette.Config;
using Navette.Setup;
using Npgsql;

namespace Navette.Roles;

/// <summary>
/// Logical decoding does not carry sequences: on a replica, the sequences of serial and identity columns stay where the
/// initial copy (or nothing) left them. Before a replica takes writes, its sequences must be past every value the
/// origin handed out. Switchover reads them on the stopped origin; failover, with the origin gone, takes the highest
/// value of each owning column on the new origin.
/// </summary>
internal static class SequenceCarrier
{
    /// <summary>A sequence owned by a column of a replicated table, with its last value on one node (null: never used).</summary>
    internal sealed record OwnedSequence(string Name, string Table, string Column, long? LastValue);

    /// <summary>The tables of <paramref name="sets"/> as the node has them (patterns resolved there).</summary>
    public static async Task<List<SourceTable>> TablesAsync(NavetteConfig config, NpgsqlConnection conn, IEnumerable<string> sets, CancellationToken ct)
    {
        var wanted = sets.Select(s => config.Sets[s]).ToList();
        return (await NodeInspector.TablesAsync(conn, ct)).Where(t => wanted.Any(s => s.Matches(t.Schema, t.Name))).ToList();
    }

    public static async Task<List<OwnedSequence>> ReadAsync(NpgsqlConnection conn, IReadOnlyList<SourceTable> tables, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT format('%I.%I', sn.nspname, s.relname), format('%I.%I', tn.nspname, t.relname), a.attname, pg_sequence_last_value(s.oid)
              FROM pg_depend d
              JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
              JOIN pg_namespace sn ON sn.oid = s.relnamespace
              JOIN pg_class t ON t.oid = d.refobjid
              JOIN pg_namespace tn ON tn.oid = t.relnamespace
              JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
               AND (tn.nspname, t.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))
             ORDER BY 1
            """, conn);
        cmd.Parameters.AddWithValue(tables.Select(t => t.Schema).ToArray());
        cmd.Parameters.AddWithValue(tables.Select(t => t.Name).ToArray());
        var result = new List<OwnedSequence>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            result.Add(new OwnedSequence(r.GetString(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetInt64(3)));
        return result;
    }

    /// <summary>
    /// Moves each of the node's sequences up to <paramref name="source"/>'s value where it is behind (never back: a node
    /// that once handed out more keeps its place). Returns what it changed.
    /// </summary>
    public static async Task<List<string>> CarryAsync(IReadOnlyList<OwnedSequence> source, string node, NpgsqlConnection conn, IReadOnlyList<SourceTable> tables, CancellationToken ct)
    {
        var here = (await ReadAsync(conn, tables, ct)).ToDictionary(s => s.Name, StringComparer.Ordinal);
        var actions = new List<string>();
        foreach (var s in source.Where(s => s.LastValue is not null))
        {
            if (!here.TryGetValue(s.Name, out var mine) || mine.LastValue >= s.LastValue) continue;
            await SetAsync(conn, s.Name, s.LastValue!.Value, ct);
            actions.Add($"node {node}: sequence {s.Name} set to {s.LastValue}");
        }
        return actions;
    }

    /// <summary>Moves each sequence past the highest value its column holds on the node (failover: the origin is gone).</summary>
    public static async Task<List<string>> RaiseToDataAsync(string node, NpgsqlConnection conn, IReadOnlyList<SourceTable> tables, CancellationToken ct)
    {
        var actions = new List<string>();
        foreach (var s in await ReadAsync(conn, tables, ct))
        {
            long? max;
            await using (var cmd = new NpgsqlCommand($"SELECT max({Sql.Ident(s.Column)})::bigint FROM {s.Table}", conn))
                max = await cmd.ExecuteScalarAsync(ct) is long m ? m : null;
            if (max is null || s.LastValue >= max) continue;
            await SetAsync(conn, s.Name, max.Value, ct);
            actions.Add($"node {node}: sequence {s.Name} set to {max} (the highest {s.Column} of {s.Table})");
        }
        return actions;
    }

    private static async Task SetAsync(NpgsqlConnection conn, string sequence, long value, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_catalog.setval($1::regclass, $2, true)", conn);
        cmd.Parameters.AddWithValue(sequence);
        cmd.Parameters.AddWithValue(value);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
