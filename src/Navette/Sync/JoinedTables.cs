using Navette.Capture;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Sync;

/// <summary>
/// Tables that joined a running subscription, each copied under a snapshot taken at some origin position: the stream's
/// changes to such a table from transactions that ended at or before that position are in the copy already, and are
/// passed over. Kept on the target (<c>navette.table_join</c>, written with the copy) so a restart knows them too.
/// </summary>
internal sealed class JoinedTables
{
    private readonly Dictionary<(string Schema, string Table), NpgsqlLogSequenceNumber> _skipUntil = new();

    public bool IsEmpty => _skipUntil.Count == 0;

    /// <summary>Reads the subscription's joins that still matter when streaming resumes from <paramref name="start"/>.</summary>
    public static async Task<JoinedTables> LoadAsync(NpgsqlConnection target, string subscription, NpgsqlLogSequenceNumber start, CancellationToken ct)
    {
        var joined = new JoinedTables();
        await using var cmd = new NpgsqlCommand(
            "SELECT schema_name, table_name, skip_until::text FROM navette.table_join WHERE subscription = $1 AND skip_until > $2::text::pg_lsn", target);
        cmd.Parameters.AddWithValue(subscription);
        cmd.Parameters.AddWithValue(start.ToString());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            joined._skipUntil[(r.GetString(0), r.GetString(1))] = NpgsqlLogSequenceNumber.Parse(r.GetString(2));
        return joined;
    }

    /// <summary>Records a join in the apply transaction that copied the table.</summary>
    public async Task AddAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string subscription, string schema, string table, NpgsqlLogSequenceNumber skipUntil,
        long rows, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            INSERT INTO navette.table_join (subscription, schema_name, table_name, skip_until, rows_copied) VALUES ($1, $2, $3, $4::text::pg_lsn, $5)
            ON CONFLICT (subscription, schema_name, table_name) DO UPDATE SET skip_until = excluded.skip_until, rows_copied = excluded.rows_copied, joined_at = now()
            """, conn, tx);
        cmd.Parameters.AddWithValue(subscription);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(table);
        cmd.Parameters.AddWithValue(skipUntil.ToString());
        cmd.Parameters.Add(new NpgsqlParameter { Value = rows, NpgsqlDbType = NpgsqlDbType.Bigint });
        await cmd.ExecuteNonQueryAsync(ct);
        lock (_skipUntil) _skipUntil[(schema, table)] = skipUntil;
    }

    /// <summary>Removes from <paramref name="tx"/> the changes its tables' copies already hold.</summary>
    public void Filter(SourceTransaction tx)
    {
        lock (_skipUntil)
        {
            if (_skipUntil.Count == 0) return;
            if (tx.Spilled is { } spilled)
                spilled.SkipTables = _skipUntil.Where(kv => tx.EndLsn <= kv.Value).Select(kv => kv.Key).ToHashSet();
            else
                tx.Changes.RemoveAll(c => _skipUntil.TryGetValue((c.Relation.Schema, c.Relation.Name), out var until) && tx.EndLsn <= until);
            // Past a join's position its table streams like any other.
            foreach (var key in _skipUntil.Where(kv => tx.EndLsn > kv.Value).Select(kv => kv.Key).ToList())
                _skipUntil.Remove(key);
        }
    }
}
