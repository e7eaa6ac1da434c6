using Navette.Cli.Demo;
using Npgsql;
using Xunit;

namespace Navette.Tests.Infrastructure;

/// <summary>Compares a table between two nodes row by row, on the rows' full text form.</summary>
internal static class TableCompare
{
    public static async Task<List<string>> RowsAsync(LocalCluster node, string table)
    {
        await using var conn = new NpgsqlConnection(node.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SET TIME ZONE 'UTC'; SET extra_float_digits = 3; SET datestyle = ISO; SET intervalstyle = postgres; SET bytea_output = hex; " +
            $"SELECT navette_compared_row::text FROM {table} AS navette_compared_row ORDER BY 1", conn);
        var rows = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add(r.GetString(0));
        return rows;
    }

    /// <summary>Asserts both nodes hold exactly the same rows (and at least <paramref name="minRows"/> of them).</summary>
    public static async Task AssertIdenticalAsync(LocalCluster origin, LocalCluster replica, string table, int minRows = 1)
    {
        var a = await RowsAsync(origin, table);
        var b = await RowsAsync(replica, table);
        Assert.True(a.Count >= minRows, $"{table}: expected at least {minRows} rows on the origin, found {a.Count}");
        if (a.SequenceEqual(b)) return;
        var missing = a.Except(b).Take(5).ToList();
        var extra = b.Except(a).Take(5).ToList();
        Assert.Fail($"{table} differs: origin {a.Count} rows, replica {b.Count} rows; " +
                    $"missing on replica: [{string.Join(" | ", missing)}]; extra on replica: [{string.Join(" | ", extra)}]");
    }
}
