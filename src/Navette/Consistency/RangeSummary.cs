using Npgsql;

namespace Navette.Consistency;

/// <summary>
/// A key range as one node holds it: row count and two checksums, and in detail mode every row's key values and hash.
/// </summary>
internal sealed record RangeSummary(long Rows, long? Checksum, long? Checksum2, List<string?[]>? Keys, long[]? Hashes)
{
    public bool SameAs(RangeSummary other) => Rows == other.Rows && Checksum == other.Checksum && Checksum2 == other.Checksum2;

    /// <summary>Reads n, c1, c2, ks, hs (as <see cref="ChunkSql.Summary"/> names them) from <paramref name="first"/> on.</summary>
    public static RangeSummary Read(NpgsqlDataReader r, int first, int keyColumns)
    {
        var rows = r.GetInt64(first);
        long? c1 = r.IsDBNull(first + 1) ? null : r.GetInt64(first + 1);
        long? c2 = r.IsDBNull(first + 2) ? null : Convert.ToInt64(r.GetValue(first + 2));
        List<string?[]>? keys = null;
        long[]? hashes = null;
        if (!r.IsDBNull(first + 3))
        {
            keys = KeyRows(r.GetValue(first + 3), keyColumns);
            hashes = r.GetFieldValue<long[]>(first + 4);
        }
        return new RangeSummary(rows, c1, c2, keys, hashes);
    }

    /// <summary>A text[][] of key values (one row per key) as Npgsql returns it; an empty array comes back one-dimensional.</summary>
    private static List<string?[]> KeyRows(object value, int keyColumns)
    {
        var result = new List<string?[]>();
        if (value is Array { Rank: 2 } grid)
        {
            for (var i = 0; i < grid.GetLength(0); i++)
            {
                var key = new string?[keyColumns];
                for (var j = 0; j < keyColumns; j++) key[j] = grid.GetValue(i, j) as string;
                result.Add(key);
            }
        }
        return result;
    }

    /// <summary>The rows that differ between two detailed summaries of the same range (this one the origin's).</summary>
    public List<RowDifference> Diff(RangeSummary target)
    {
        var mine = new Dictionary<string, (string?[] Key, long Hash)>(StringComparer.Ordinal);
        for (var i = 0; i < Keys!.Count; i++) mine[Join(Keys[i])] = (Keys[i], Hashes![i]);
        var result = new List<RowDifference>();
        for (var i = 0; i < target.Keys!.Count; i++)
        {
            var key = Join(target.Keys[i]);
            if (!mine.Remove(key, out var m)) result.Add(new RowDifference(DifferenceKind.Extra, target.Keys[i]));
            else if (m.Hash != target.Hashes![i]) result.Add(new RowDifference(DifferenceKind.Different, m.Key));
        }
        result.AddRange(mine.Values.Select(m => new RowDifference(DifferenceKind.Missing, m.Key)));
        return result;
    }

    private static string Join(string?[] key) => string.Join("\u001f", key.Select(k => k ?? "\u0000"));
}
