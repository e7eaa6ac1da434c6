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

    public string Insert(SourceRelation rel, TargetTable target) =>
        Cached(rel, ChangeKind.Insert, "", () =>
        {
            var sb = new StringBuilder("INSERT INTO ").Append(target.QualifiedName).Append(" (");
            for (var i = 0; i < rel.Columns.Length; i++)
                sb.Append(i == 0 ? "" : ", ").Append(Sql.Ident(rel.Columns[i]));
            sb.Append(") VALUES (");
            for (var i = 0; i < rel.Columns.Length; i++)
                sb.Append(i == 0 ? "" : ", ").Append('$').Append(i + 1).Append("::").Append(TypeOf(target, rel, i));
            return sb.Append(')').ToString();
        });

    /// <summary>Multi-row INSERT for <paramref name="rows"/> consecutive inserts into the same table.</summary>
    public string InsertMany(SourceRelation rel, TargetTable target, int rows) =>
        Cached(rel, ChangeKind.Insert, "x" + rows, () =>
        {
            var sb = new StringBuilder("INSERT INTO ").Append(target.QualifiedName).Append(" (");
            for (var i = 0; i < rel.Columns.Length; i++)
                sb.Append(i == 0 ? "" : ", ").Append(Sql.Ident(rel.Columns[i]));
            sb.Append(") VALUES ");
            var p = 1;
            for (var r = 0; r < rows; r++)
            {
                sb.Append(r == 0 ? "(" : ", (");
                for (var i = 0; i < rel.Columns.Length; i++)
                    sb.Append(i == 0 ? "" : ", ").Append('$').Append(p++).Append("::").Append(TypeOf(target, rel, i));
                sb.Append(')');
            }
            return sb.ToString();
        });

    /// <summary>
    /// UPDATE setting every column whose value was sent (unchanged TOAST values are left alone);
    /// parameters are the new values in column order, then the identity values (see <see cref="IdentityParameters"/>).
    /// </summary>
    public string Update(SourceRelation rel, TargetTable target, RowImage newRow)
    {
        var shape = newRow.Unchanged is null ? "" : Mask(newRow.Unchanged);
        return Cached(rel, ChangeKind.Update, shape, () =>
        {
            var sb = new StringBuilder("UPDATE ").Append(target.QualifiedName).Append(" SET ");
            var p = 1;
            var first = true;
            for (var i = 0; i < rel.Columns.Length; i++)
            {
                if (newRow.IsUnchanged(i)) continue;
                sb.Append(first ? "" : ", ").Append(Sql.Ident(rel.Columns[i])).Append(" = $").Append(p++).Append("::").Append(TypeOf(target, rel, i));
                first = false;
            }
            AppendIdentityWhere(sb, rel, target, p);
            return sb.ToString();
        });
    }

    public string Delete(SourceRelation rel, TargetTable target) =>
        Cached(rel, ChangeKind.Delete, "", () =>
        {
            var sb = new StringBuilder("DELETE FROM ").Append(target.QualifiedName);
            AppendIdentityWhere(sb, rel, target, 1);
            return sb.ToString();
        });

    public static string Truncate(IEnumerable<TargetTable> tables, bool restartIdentity)
    {
        var sb = new StringBuilder("TRUNCATE ");
        sb.AppendJoin(", ", tables.Select(t => t.QualifiedName));
        if (restartIdentity) sb.Append(" RESTART IDENTITY");
        return sb.ToString();
    }

    /// <summary>The columns whose values identify the row: the key, or every column for REPLICA IDENTITY FULL.</summary>
    public static IEnumerable<int> IdentityColumns(SourceRelation rel) =>
        rel.IdentityFull ? Enumerable.Range(0, rel.Columns.Length) : rel.KeyColumns;

    private static void AppendIdentityWhere(StringBuilder sb, SourceRelation rel, TargetTable target, int firstParam)
    {
        var p = firstParam;
        if (!rel.IdentityFull)
        {
            sb.Append(" WHERE ");
            var first = true;
            foreach (var i in rel.KeyColumns)
            {
                sb.Append(first ? "" : " AND ").Append(Sql.Ident(rel.Columns[i])).Append(" = $").Append(p++).Append("::").Append(TypeOf(target, rel, i));
                first = false;
            }
            return;
        }
        // REPLICA IDENTITY FULL: no key, possibly duplicate rows, and types without an equality operator
        // (json, point, xml). Rows are matched on their text form and exactly one of them is changed.
        sb.Append(" WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM ").Append(target.QualifiedName).Append(" WHERE ");
        for (var i = 0; i < rel.Columns.Length; i++)
            sb.Append(i == 0 ? "" : " AND ").Append(Sql.Ident(rel.Columns[i])).Append("::text IS NOT DISTINCT FROM $").Append(p++).Append("::text");
        sb.Append(" LIMIT 1)");
    }

    private static string TypeOf(TargetTable target, SourceRelation rel, int column) =>
        target.ColumnTypes.TryGetValue(rel.Columns[column], out var t)
            ? t
            : throw new NavetteException($"column {Sql.Ident(rel.Columns[column])} of {rel} exists on the origin but not on the target table {target.QualifiedName}; add it on the target (or run navette apply to see every difference)");

    private static string Mask(bool[] unchanged)
    {
        var chars = new char[unchanged.Length];
        for (var i = 0; i < unchanged.Length; i++) chars[i] = unchanged[i] ? 'u' : 'v';
        return new string(chars);
    }

    private string Cached(SourceRelation rel, ChangeKind kind, string shape, Func<string> build)
    {
        if (!_cache.TryGetValue((rel, kind, shape), out var sql))
            _cache[(rel, kind, shape)] = sql = build();
        return sql;
    }
}
