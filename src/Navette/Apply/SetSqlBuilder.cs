using System.Text;
using Navette.Capture;

namespace Navette.Apply;

/// <summary>
/// Statements applying many rows of one table at once: each column's values travel as one text[] parameter,
/// expanded by <c>unnest</c> and cast to the target column type. One statement per run of same-shape changes
/// instead of one per row removes the per-statement cost on the target, which bounds catch-up speed.
/// </summary>
internal sealed class SetSqlBuilder
{
    private readonly Dictionary<(SourceRelation, ChangeKind, string), string> _cache = new();

    /// <summary>INSERT of every column; parameters: one text[] per column, in column order.</summary>
    public string Insert(SourceRelation rel, TargetTable target) =>
        Cached(rel, ChangeKind.Insert, "", () =>
        {
            var sb = new StringBuilder("INSERT INTO ").Append(target.QualifiedName).Append(" (");
            AppendJoined(sb, Enumerable.Range(0, rel.Columns.Length), i => Sql.Ident(rel.Columns[i]));
            sb.Append(target.HasIdentityAlways ? ") OVERRIDING SYSTEM VALUE SELECT " : ") SELECT ");
            AppendJoined(sb, Enumerable.Range(0, rel.Columns.Length), i => $"v.p{i}::{Cast(target, rel, i)}");
            AppendUnnest(sb.Append(" FROM "), Enumerable.Range(0, rel.Columns.Length).Select(i => $"p{i}").ToList());
            if (target.IsFence) sb.Append(" ON CONFLICT DO NOTHING");
            return sb.ToString();
        });

    /// <summary>
    /// UPDATE of the columns not flagged unchanged in <paramref name="shape"/>, rows found by key (which must
    /// not change in these rows); parameters: one text[] per written column, then one per key column.
    /// </summary>
    public string Update(SourceRelation rel, TargetTable target, bool[]? shape)
    {
        var key = shape is null ? "" : new string(shape.Select(u => u ? 'u' : 'v').ToArray());
        return Cached(rel, ChangeKind.Update, key, () =>
        {
            var written = Enumerable.Range(0, rel.Columns.Length).Where(i => shape is null || !shape[i]).ToList();
            var sb = new StringBuilder("UPDATE ").Append(target.OnlyName).Append(" AS t SET ");
            AppendJoined(sb, written, i => $"{Sql.Ident(rel.Columns[i])} = v.p{i}::{Cast(target, rel, i)}");
            var names = written.Select(i => $"p{i}").Concat(rel.KeyColumns.Select(k => $"k{k}")).ToList();
            AppendUnnest(sb.Append(" FROM "), names);
            AppendKeyMatch(sb, rel, target);
            return sb.ToString();
        });
    }

    /// <summary>DELETE of rows found by key; parameters: one text[] per key column.</summary>
    public string Delete(SourceRelation rel, TargetTable target) =>
        Cached(rel, ChangeKind.Delete, "", () =>
        {
            var sb = new StringBuilder("DELETE FROM ").Append(target.OnlyName).Append(" AS t USING ");
            AppendUnnest(sb, rel.KeyColumns.Select(k => $"k{k}").ToList());
            AppendKeyMatch(sb, rel, target);
            return sb.ToString();
        });

    private static void AppendKeyMatch(StringBuilder sb, SourceRelation rel, TargetTable target)
    {
        sb.Append(" WHERE ");
        AppendJoined(sb, rel.KeyColumns, k => $"t.{Sql.Ident(rel.Columns[k])} {Column(target, rel, k).EqualityOperator ?? "="} v.k{k}::{Cast(target, rel, k)}", " AND ");
    }

    private static void AppendUnnest(StringBuilder sb, IReadOnlyList<string> names)
    {
        sb.Append("unnest(");
        AppendJoined(sb, Enumerable.Range(0, names.Count), i => $"${i + 1}::text[]");
        sb.Append(") AS v(").AppendJoin(", ", names).Append(')');
    }

    private static void AppendJoined(StringBuilder sb, IEnumerable<int> items, Func<int, string> render, string separator = ", ")
    {
        var first = true;
        foreach (var i in items)
        {
            if (!first) sb.Append(separator);
            sb.Append(render(i));
            first = false;
        }
    }

    private static string Cast(TargetTable target, SourceRelation rel, int column) => Column(target, rel, column).CastType;

    private static TargetColumn Column(TargetTable target, SourceRelation rel, int column) =>
        target.Columns.TryGetValue(rel.Columns[column], out var c)
            ? c
            : throw new NavetteException($"column {Sql.Ident(rel.Columns[column])} of {rel} exists on the origin but not on the target table {target.QualifiedName}; add it on the target (or run navette apply to see every difference)");

    private string Cached(SourceRelation rel, ChangeKind kind, string shape, Func<string> build)
    {
        if (!_cache.TryGetValue((rel, kind, shape), out var sql))
            _cache[(rel, kind, shape)] = sql = build();
        return sql;
    }
}
