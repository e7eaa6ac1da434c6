using Npgsql;

namespace Navette.Consistency;

/// <summary>One bucket of a range as one node holds it: rows, and the xor of their hashes.</summary>
internal readonly record struct BucketSummary(long Rows, long Checksum);

/// <summary>
/// A key range as one node holds it: per bucket (the range cut at inner bounds) a <see cref="BucketSummary"/>, or in
/// detail mode every row's key values and hash.
/// </summary>
internal sealed record RangeSummary(long Rows, Dictionary<int, BucketSummary>? Buckets, List<string?[]>? Keys, long[]? Hashes)
{
    public BucketSummary Bucket(int b) => Buckets!.TryGetValue(b, out var s) ? s : default;

    /// <summary>Reads bs, bn, b1 from <paramref name="first"/> on.</summary>
    public static RangeSummary ReadBuckets(NpgsqlDataReader r, int first)
    {
        var numbers = r.GetFieldValue<int[]>(first);
        var rows = r.GetFieldValue<long[]>(first + 1);
        var c1 = r.GetFieldValue<long[]>(first + 2);
        var buckets = new Dictionary<int, BucketSummary>();
        for (var i = 0; i < numbers.Length; i++) buckets[numbers[i]] = new BucketSummary(rows[i], c1[i]);
        return new RangeSummary(rows.Sum(), buckets, null, null);
    }

    /// <summary>Reads n, ks, hs from <paramref name="first"/> on.</summary>
    public static RangeSummary ReadDetail(NpgsqlDataReader r, int first, int keyColumns) =>
        new(r.GetInt64(first), null, KeyRows(r.GetValue(first + 1), keyColumns), r.GetFieldValue<long[]>(first + 2));

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
