using System.Text;
using Navette.Capture;

namespace Navette.Apply;

/// <summary>
/// Builds the statement applying one row change. Values travel as text parameters of unknown type cast to
/// the target column's type, so every type PostgreSQL can print is handled by its own input function.
/// Statement texts are cached per relation and shape so the hot path only binds values.
/// </summary>
internal sealed class ChangeSqlBuilder
{
    private readonly Dictionary<(SourceRelation, ChangeKind, string), string> _cache = new();

    public string Insert(SourceRelation rel, TargetTable target) => InsertMany(rel, target, 1);

    /// <summary>Multi-row INSERT for <paramref name="rows"/> consecutive inserts into the same table.</summary>
    public string InsertMany(SourceRelation rel, TargetTable target, int rows)
    {
        var shape = rows == 1 ? "" : RowCountShape(rows);
        if (_cache.TryGetValue((rel, ChangeKind.Insert, shape), out var sql)) return sql;
        var sb = new StringBuilder("INSERT INTO ").Append(target.QualifiedName).Append(" (");
        for (var i = 0; i < rel.Columns.Length; i++)
            sb.Append(i == 0 ? "" : ", ").Append(Sql.Ident(rel.Columns[i]));
        sb.Append(target.HasIdentityAlways ? ") OVERRIDING SYSTEM VALUE VALUES " : ") VALUES ");
        var p = 1;
        for (var r = 0; r < rows; r++)
        {
            sb.Append(r == 0 ? "(" : ", (");
            for (var i = 0; i < rel.Columns.Length; i++)
                sb.Append(i == 0 ? "" : ", ").Append('$').Append(p++).Append("::").Append(TypeOf(target, rel, i));
            sb.Append(')');
        }
        if (target.IsFence) sb.Append(" ON CONFLICT DO NOTHING");
        return _cache[(rel, ChangeKind.Insert, shape)] = sb.ToString();
    }

    /// <summary>
    /// UPDATE setting every column whose value was sent (unchanged TOAST values are left alone). Parameters:
    /// the sent new values in column order, then the identity values (see <see cref="Delete"/>).
    /// </summary>
    public string Update(RowChange change, TargetTable target)
    {
        var rel = change.Relation;
        var newRow = change.New!;
        var identity = rel.IdentityFull ? IdentityImage(change) : null;
        var shape = newRow.Unchanged is null && identity is null ? "" : Shape(newRow.Unchanged, identity);
        if (_cache.TryGetValue((rel, ChangeKind.Update, shape), out var sql)) return sql;
        var sb = new StringBuilder("UPDATE ").Append(target.OnlyName).Append(" SET ");
        var p = 1;
        var first = true;
        for (var i = 0; i < rel.Columns.Length; i++)
        {
            if (newRow.IsUnchanged(i)) continue;
            sb.Append(first ? "" : ", ").Append(Sql.Ident(rel.Columns[i])).Append(" = $").Append(p++).Append("::").Append(TypeOf(target, rel, i));
            first = false;
        }
        AppendIdentityWhere(sb, rel, target, p, identity);
        return _cache[(rel, ChangeKind.Update, shape)] = sb.ToString();
    }

    /// <summary>
    /// DELETE of the row the parameters identify: the key columns' values (the old ones when the key changed),
    /// or for REPLICA IDENTITY FULL every old value that is not NULL, in column order (NULLs are matched with
    /// IS NULL and take no parameter).
    /// </summary>
    public string Delete(RowChange change, TargetTable target)
    {
        var rel = change.Relation;
        var identity = rel.IdentityFull ? IdentityImage(change) : null;
        var shape = identity is null ? "" : Shape(null, identity);
        if (_cache.TryGetValue((rel, ChangeKind.Delete, shape), out var sql)) return sql;
        var sb = new StringBuilder("DELETE FROM ").Append(target.OnlyName);
        AppendIdentityWhere(sb, rel, target, 1, identity);
        return _cache[(rel, ChangeKind.Delete, shape)] = sb.ToString();
    }

    public static string Truncate(IEnumerable<TargetTable> tables, bool restartIdentity)
    {
        var sb = new StringBuilder("TRUNCATE ");
        sb.AppendJoin(", ", tables.Select(t => t.OnlyName));
        if (restartIdentity) sb.Append(" RESTART IDENTITY");
        return sb.ToString();
    }

    private static RowImage IdentityImage(RowChange change) => change.Old ?? change.New!;

    private static void AppendIdentityWhere(StringBuilder sb, SourceRelation rel, TargetTable target, int firstParam, RowImage? full)
    {
        var p = firstParam;
        if (full is null)
        {
            sb.Append(" WHERE ");
            var first = true;
            foreach (var i in rel.KeyColumns)
            {
                // The type's own equality: a bare = is looked up in search_path, where an extension's may not be.
                var column = Column(target, rel, i);
                sb.Append(first ? "" : " AND ").Append(Sql.Ident(rel.Columns[i])).Append(' ').Append(column.EqualityOperator ?? "=")
                    .Append(" $").Append(p++).Append("::").Append(column.CastType);
                first = false;
            }
            return;
        }
        // REPLICA IDENTITY FULL: no key, possibly duplicate rows, and types without an equality operator
        // (json, point, xml). A row matches when every column prints exactly as the old value pgoutput sent
        // (same output function), and exactly one matching row is changed. Where the type has a btree
        // equality it is tested too: cheaper than printing, and it lets an index on the column find the row.
        sb.Append(" WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ").Append(target.OnlyName).Append(" WHERE ");
        for (var i = 0; i < rel.Columns.Length; i++)
        {
            var column = Column(target, rel, i);
            var name = Sql.Ident(rel.Columns[i]);
            sb.Append(i == 0 ? "" : " AND ");
            if (full.Values[i] is null)
            {
                sb.Append(name).Append(" IS NULL");
                continue;
            }
            // One parameter, typed text: a parameter of unknown type cannot be cast to two different types.
            if (column.EqualityOperator is { } eq)
                sb.Append(name).Append(' ').Append(eq).Append(" $").Append(p).Append("::text::").Append(column.CastType).Append(" AND ");
            sb.Append(column.OutputFunction).Append('(').Append(name).Append(")::text = $").Append(p++).Append("::text");
        }
        sb.Append(" LIMIT 1)");
    }

    /// <summary>
    /// The table without its inheritance children, which the origin publishes (and changes) as tables of their
    /// own. A partitioned table is the exception: its rows are all in its partitions.
    /// </summary>

    private static string TypeOf(TargetTable target, SourceRelation rel, int column) => Column(target, rel, column).CastType;

    private static TargetColumn Column(TargetTable target, SourceRelation rel, int column) =>
        target.Columns.TryGetValue(rel.Columns[column], out var c)
            ? c
            : throw new NavetteException($"column {Sql.Ident(rel.Columns[column])} of {rel} exists on the origin but not on the target table {target.QualifiedName}; add it on the target (or run navette apply to see every difference)");

    /// <summary>Per column: u = unchanged TOAST value (not set), n = NULL identity value, v = value.</summary>
    private static string Shape(bool[]? unchanged, RowImage? identity)
    {
        var n = unchanged?.Length ?? identity!.Values.Length;
        return string.Create(identity is null ? n : 2 * n, (unchanged, identity), static (span, state) =>
        {
            var (unchanged, identity) = state;
            var n = unchanged?.Length ?? identity!.Values.Length;
            for (var i = 0; i < n; i++)
                span[i] = unchanged is not null && unchanged[i] ? 'u' : 'v';
            if (identity is null) return;
            for (var i = 0; i < n; i++)
                span[n + i] = identity.Values[i] is null ? 'n' : 'v';
        });
    }

    private static readonly string[] s_rowCounts = Enumerable.Range(0, 257).Select(i => "x" + i).ToArray();

    private static string RowCountShape(int rows) => rows < s_rowCounts.Length ? s_rowCounts[rows] : "x" + rows;
}
