using Navette.Cli.Demo;
using Npgsql;

namespace Navette.Tests.Faults;

/// <summary>One table compared by key between origin and target, independently of navette's own compare.</summary>
internal sealed record TableAudit(string Table, long OriginRows, long TargetRows, long Lost, long Duplicated, long Different, long Extra)
{
    public bool Clean => Lost == 0 && Duplicated == 0 && Different == 0 && Extra == 0 && OriginRows == TargetRows;

    public override string ToString() =>
        $"{Table}: origin {OriginRows} rows, target {TargetRows}; lost {Lost}, duplicated {Duplicated}, different {Different}, extra {Extra}";
}

internal static class RowAudit
{
    /// <summary>
    /// Reads both sides whole (key, full row text) and counts: keys missing on the target (lost), copies of a key beyond
    /// the first (duplicated: the target's ledger has no key, so a transaction applied twice lands there), rows whose
    /// text differs (different) and keys the origin does not have (extra).
    /// </summary>
    public static async Task<TableAudit> AuditAsync(LocalCluster origin, LocalCluster target, string table, string key = "id")
    {
        var o = await ReadAsync(origin, table, key);
        var t = await ReadAsync(target, table, key);
        long lost = 0, duplicated = 0, different = 0, extra = 0;
        var originByKey = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, row) in o) originByKey[k] = row;
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (k, row) in t)
        {
            seen[k] = seen.GetValueOrDefault(k) + 1;
            if (seen[k] > 1) { duplicated++; continue; }
            if (!originByKey.TryGetValue(k, out var expected)) extra++;
            else if (!string.Equals(expected, row, StringComparison.Ordinal)) different++;
        }
        foreach (var k in originByKey.Keys)
            if (!seen.ContainsKey(k)) lost++;
        return new TableAudit(table, o.Count, t.Count, lost, duplicated, different, extra);
    }

    private static async Task<List<(string Key, string Row)>> ReadAsync(LocalCluster node, string table, string key)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SET TIME ZONE 'UTC'; SET extra_float_digits = 3; SET datestyle = ISO; SET intervalstyle = postgres; " +
                                                $"SELECT ({key})::text, r::text FROM {table} AS r", conn) { CommandTimeout = 300 };
        var rows = new List<(string, string)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add((r.GetString(0), r.GetString(1)));
        return rows;
    }
}
