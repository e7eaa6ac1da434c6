using System.Text;
using Navette.Apply;
using Navette.Capture;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Conflicts;

/// <summary>
/// The statements conflict handling adds to an apply transaction. Values travel as text parameters cast to the
/// target column's type, as everywhere in apply, so keys compare and print exactly as the applier writes them.
/// </summary>
internal static class ConflictSql
{
    /// <summary>Numbers parameters in the order they are added.</summary>
    private sealed class Parameters
    {
        public List<NpgsqlParameter> List { get; } = new();

        public string Text(string? value)
        {
            List.Add(new NpgsqlParameter { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            return "$" + List.Count;
        }

        public string Add(object? value, NpgsqlDbType type)
        {
            List.Add(new NpgsqlParameter { Value = value ?? DBNull.Value, NpgsqlDbType = type });
            return "$" + List.Count;
        }

        public NpgsqlParameter[] ToArray() => List.ToArray();
    }

    /// <summary>
    /// The local rows of <paramref name="keys"/> with the commit time and origin of the transaction that wrote them,
    /// locked for the apply. Results: key ordinal, xmin, commit time, origin id, and the row as jsonb unless the
    /// origin is one of <paramref name="fromIds"/> (a change from the row's own writer is not a conflict).
    /// </summary>
    public static (string, NpgsqlParameter[]) LookupRows(TargetTable target, SourceRelation rel, List<string?[]> keys, uint[] fromIds)
    {
        var p = new Parameters();
        var unnest = KeyUnnest(rel, keys, p);
        // The commit time and origin are computed in the select list, from the row version finally locked: when
        // FOR UPDATE waits for a concurrent writer, PostgreSQL re-reads the row but would keep a lateral join's old result.
        var sb = new StringBuilder("SELECT v.ord::int4, t.xmin::text, pg_catalog.pg_xact_commit_timestamp(t.xmin), ")
            .Append("(pg_catalog.pg_xact_commit_timestamp_origin(t.xmin)).roident::int8, CASE WHEN (pg_catalog.pg_xact_commit_timestamp_origin(t.xmin)).roident = ANY(")
            .Append(p.Add(fromIds, NpgsqlDbType.Array | NpgsqlDbType.Oid))
            .Append(") THEN NULL ELSE pg_catalog.to_jsonb(t)::text END FROM ").Append(unnest)
            .Append(" JOIN ").Append(target.OnlyName).Append(" AS t ON ");
        for (var i = 0; i < rel.KeyColumns.Length; i++)
        {
            var column = Column(target, rel, rel.KeyColumns[i]);
            sb.Append(i == 0 ? "" : " AND ").Append("t.").Append(Sql.Ident(rel.Columns[rel.KeyColumns[i]])).Append(' ')
                .Append(column.EqualityOperator ?? "=").Append(" v.k").Append(i).Append("::").Append(column.CastType);
        }
        sb.Append(" FOR UPDATE OF t");
        return (sb.ToString(), p.ToArray());
    }

    /// <summary>The tombstones of <paramref name="keys"/>: key ordinal, commit time, origin id; locked.</summary>
    public static (string, NpgsqlParameter[]) LookupTombstones(TargetTable target, SourceRelation rel, List<string?[]> keys)
    {
        var p = new Parameters();
        var unnest = KeyUnnest(rel, keys, p);
        var sb = new StringBuilder("SELECT v.ord::int4, pg_catalog.pg_xact_commit_timestamp(tb.xmin), (pg_catalog.pg_xact_commit_timestamp_origin(tb.xmin)).roident::int8 FROM ").Append(unnest)
            .Append(" JOIN navette.tombstone AS tb ON tb.table_oid = ").Append(p.Text(target.QualifiedName)).Append("::text::pg_catalog.regclass AND tb.key = pg_catalog.jsonb_build_array(");
        for (var i = 0; i < rel.KeyColumns.Length; i++)
            sb.Append(i == 0 ? "" : ", ").Append("v.k").Append(i).Append("::").Append(Column(target, rel, rel.KeyColumns[i]).CastType);
        sb.Append(") FOR UPDATE OF tb");
        return (sb.ToString(), p.ToArray());
    }

    /// <summary>
    /// Serialises the apply sessions of one node (one per incoming subscription) on the keys they touch, present or
    /// not: two changes of one key from two peers are then settled one after the other, each seeing the other's result.
    /// The locks are taken in the order given, which the caller sorts, so two sessions never wait on each other in a cycle.
    /// </summary>
    public static (string, NpgsqlParameter[]) LockKeys(long[] sortedLockIds)
    {
        var p = new Parameters();
        return ($"SELECT count(pg_catalog.pg_advisory_xact_lock(k)) FROM unnest({p.Add(sortedLockIds, NpgsqlDbType.Array | NpgsqlDbType.Bigint)}::int8[]) AS k", p.ToArray());
    }

    /// <summary>The advisory lock id of a key of a table (FNV-1a over its names and values).</summary>
    public static long LockId(string table, string?[] key)
    {
        var h = 14695981039346656037UL;
        void Mix(string? s)
        {
            foreach (var ch in s ?? "\u0000")
            {
                h ^= ch;
                h *= 1099511628211UL;
            }
            h ^= 0x1f;
            h *= 1099511628211UL;
        }
        Mix(table);
        foreach (var v in key) Mix(v);
        return unchecked((long)h);
    }

    /// <summary>Records (or refreshes) the delete of a key: the tombstone's xmin is this transaction, so it carries its version.</summary>
    public static (string, NpgsqlParameter[]) WriteTombstone(TargetTable target, SourceRelation rel, string?[] key)
    {
        var p = new Parameters();
        var sql = $"INSERT INTO navette.tombstone (table_oid, key) VALUES ({p.Text(target.QualifiedName)}::text::pg_catalog.regclass, {TombstoneKey(target, rel, key, p)}) " +
                  "ON CONFLICT (table_oid, key) DO UPDATE SET deleted_at = now()";
        return (sql, p.ToArray());
    }

    public static (string, NpgsqlParameter[]) RemoveTombstone(TargetTable target, SourceRelation rel, string?[] key)
    {
        var p = new Parameters();
        var sql = $"DELETE FROM navette.tombstone WHERE table_oid = {p.Text(target.QualifiedName)}::text::pg_catalog.regclass AND key = {TombstoneKey(target, rel, key, p)}";
        return (sql, p.ToArray());
    }

    /// <summary>The conflict log row, with the key and the incoming row as typed jsonb.</summary>
    public static (string, NpgsqlParameter[]) Log(string subscription, ConflictType type, RowChange c, TargetTable target, string? localJson,
        RowVersion? local, RowVersion incoming, NpgsqlLogSequenceNumber commitLsn, ConflictPolicy policy, string outcome)
    {
        var p = new Parameters();
        var sb = new StringBuilder("INSERT INTO navette.conflict_log (subscription, conflict_type, table_name, key, local_tuple, remote_tuple, local_origin, ")
            .Append("local_commit_time, remote_origin, remote_commit_time, remote_commit_lsn, policy, outcome) VALUES (")
            .Append(p.Text(subscription)).Append(", ").Append(p.Text(type.Name())).Append(", ").Append(p.Text(target.QualifiedName)).Append(", ")
            .Append(KeyJson(target, c, p)).Append(", ").Append(p.Text(localJson)).Append("::jsonb, ").Append(RemoteJson(target, c, c.New, p)).Append(", ")
            .Append(p.Text(local?.Node)).Append(", ")
            .Append(p.Add(local is { CommitTime: var t } && t != DateTime.MinValue ? t : null, NpgsqlDbType.TimestampTz)).Append(", ")
            .Append(p.Text(incoming.Node)).Append(", ").Append(p.Add(incoming.CommitTime, NpgsqlDbType.TimestampTz)).Append(", ")
            .Append(p.Text(commitLsn.ToString())).Append("::text::pg_lsn, ").Append(p.Text(policy.ToString())).Append(", ").Append(p.Text(outcome)).Append(')');
        return (sb.ToString(), p.ToArray());
    }

    /// <summary>An aborted conflict of this change still waiting (id, operator's decision or NULL).</summary>
    public static (string, NpgsqlParameter[]) FindDecision(string subscription, ConflictType type, RowChange c, TargetTable target, NpgsqlLogSequenceNumber commitLsn)
    {
        var p = new Parameters();
        var sql = $"SELECT id, decision FROM navette.conflict_log WHERE subscription = {p.Text(subscription)} AND outcome = 'aborted' " +
                  $"AND table_name = {p.Text(target.QualifiedName)} AND conflict_type = {p.Text(type.Name())} " +
                  $"AND remote_commit_lsn = {p.Text(commitLsn.ToString())}::text::pg_lsn AND key = {KeyJson(target, c, p)} ORDER BY id LIMIT 1";
        return (sql, p.ToArray());
    }

    /// <summary>
    /// Calls a conflicts: custom function and returns whether it returned NULL, then the kept row's columns as text
    /// (in the relation's column order).
    /// </summary>
    public static (string, NpgsqlParameter[]) CallMerge(string function, ConflictType type, RowChange c, RowImage? remote, string? localJson, TargetTable target)
    {
        var p = new Parameters();
        var rel = c.Relation;
        var sb = new StringBuilder("SELECT f.j IS NULL");
        for (var i = 0; i < rel.Columns.Length; i++)
            sb.Append(", ").Append(Column(target, rel, i).OutputFunction).Append("(r.").Append(Sql.Ident(rel.Columns[i])).Append(")::text");
        sb.Append(" FROM (SELECT ").Append(function).Append('(').Append(p.Text(type.Name())).Append(", ").Append(p.Text(localJson)).Append("::jsonb, ")
            .Append(RemoteJson(target, c, remote, p)).Append(")::jsonb AS j) AS f LEFT JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::")
            .Append(target.QualifiedName).Append(", f.j) AS r ON true");
        return (sb.ToString(), p.ToArray());
    }

    public static (string, NpgsqlParameter[]) QueueRowResend(TargetTable target, SourceRelation rel, string?[] key, string xmin)
    {
        var p = new Parameters();
        var sql = "INSERT INTO navette.rebroadcast (schema_name, table_name, key_columns, key_values, row_xmin) VALUES (" +
                  $"{p.Text(target.Schema)}, {p.Text(target.Name)}, {p.Add(KeyNames(rel), NpgsqlDbType.Array | NpgsqlDbType.Text)}, " +
                  $"{p.Add(key, NpgsqlDbType.Array | NpgsqlDbType.Text)}, {p.Text(xmin)}::text::xid)";
        return (sql, p.ToArray());
    }

    public static (string, NpgsqlParameter[]) QueueDeleteResend(TargetTable target, SourceRelation rel, string?[] key, RowImage row)
    {
        var p = new Parameters();
        var sql = "INSERT INTO navette.rebroadcast (schema_name, table_name, key_columns, key_values, columns, row_values) VALUES (" +
                  $"{p.Text(target.Schema)}, {p.Text(target.Name)}, {p.Add(KeyNames(rel), NpgsqlDbType.Array | NpgsqlDbType.Text)}, " +
                  $"{p.Add(key, NpgsqlDbType.Array | NpgsqlDbType.Text)}, {p.Add(rel.Columns, NpgsqlDbType.Array | NpgsqlDbType.Text)}, " +
                  $"{p.Add(row.Values, NpgsqlDbType.Array | NpgsqlDbType.Text)})";
        return (sql, p.ToArray());
    }

    // ------------------------------------------------------------ pieces

    private static string[] KeyNames(SourceRelation rel) => rel.KeyColumns.Select(k => rel.Columns[k]).ToArray();

    private static string KeyUnnest(SourceRelation rel, List<string?[]> keys, Parameters p)
    {
        var sb = new StringBuilder("unnest(");
        for (var i = 0; i < rel.KeyColumns.Length; i++)
        {
            var column = new string?[keys.Count];
            for (var r = 0; r < keys.Count; r++) column[r] = keys[r][i];
            sb.Append(i == 0 ? "" : ", ").Append(p.Add(column, NpgsqlDbType.Array | NpgsqlDbType.Text)).Append("::text[]");
        }
        sb.Append(") WITH ORDINALITY AS v(");
        for (var i = 0; i < rel.KeyColumns.Length; i++) sb.Append('k').Append(i).Append(", ");
        return sb.Append("ord)").ToString();
    }

    /// <summary>The key as the tombstone trigger computes it: jsonb_build_array of the typed key values.</summary>
    private static string TombstoneKey(TargetTable target, SourceRelation rel, string?[] key, Parameters p)
    {
        var sb = new StringBuilder("pg_catalog.jsonb_build_array(");
        for (var i = 0; i < rel.KeyColumns.Length; i++)
            sb.Append(i == 0 ? "" : ", ").Append(p.Text(key[i])).Append("::").Append(Column(target, rel, rel.KeyColumns[i]).CastType);
        return sb.Append(')').ToString();
    }

    /// <summary>The change's key as a typed jsonb object, e.g. {"id": 7}.</summary>
    private static string KeyJson(TargetTable target, RowChange c, Parameters p)
    {
        var rel = c.Relation;
        var image = c.Old ?? c.New!;
        var columns = rel.KeyColumns.Select(k => (k, image.Values[k]));
        return JsonOf(target, rel, columns, p);
    }

    /// <summary>The incoming row as a typed jsonb object (columns not sent, unchanged TOAST values, left out); for a delete, its key.</summary>
    private static string RemoteJson(TargetTable target, RowChange c, RowImage? row, Parameters p)
    {
        var rel = c.Relation;
        if (row is null) return KeyJson(target, c, p);
        var columns = Enumerable.Range(0, rel.Columns.Length).Where(i => !row.IsUnchanged(i)).Select(i => (i, row.Values[i]));
        return JsonOf(target, rel, columns, p);
    }

    private static string JsonOf(TargetTable target, SourceRelation rel, IEnumerable<(int Column, string? Value)> columns, Parameters p)
    {
        var sb = new StringBuilder("(SELECT pg_catalog.to_jsonb(j) FROM (SELECT ");
        var first = true;
        foreach (var (i, value) in columns)
        {
            sb.Append(first ? "" : ", ").Append(p.Text(value)).Append("::").Append(Column(target, rel, i).CastType).Append(" AS ").Append(Sql.Ident(rel.Columns[i]));
            first = false;
        }
        return sb.Append(") AS j)").ToString();
    }

    private static TargetColumn Column(TargetTable target, SourceRelation rel, int column) =>
        target.Columns.TryGetValue(rel.Columns[column], out var c)
            ? c
            : throw new NavetteException($"column {Sql.Ident(rel.Columns[column])} of {rel} exists on the origin but not on the target table {target.QualifiedName}; add it on the target (or run navette apply to see every difference)");
}
