using Navette.Apply;
using Navette.Capture;
using NpgsqlTypes;
using Xunit;

namespace Navette.Tests.Unit;

public sealed class BatchCompactorTests
{
    private static readonly SourceRelation Items = new()
    {
        Id = 1, Schema = "public", Name = "items", Columns = ["id", "name", "blob"], TypeOids = [23, 25, 25], KeyColumns = [0], IdentityFull = false,
    };
    private static readonly SourceRelation Log = new()
    {
        Id = 2, Schema = "public", Name = "log", Columns = ["id", "msg"], TypeOids = [23, 25], KeyColumns = [0], IdentityFull = false,
    };
    private static readonly SourceRelation Full = new()
    {
        Id = 3, Schema = "public", Name = "full", Columns = ["a"], TypeOids = [25], KeyColumns = [], IdentityFull = true,
    };

    private static RowImage Row(params string?[] v) => new(v, null);

    private static SourceTransaction Tx(params RowChange[] changes) => new()
    {
        Xid = 1, CommitLsn = new NpgsqlLogSequenceNumber(1), EndLsn = new NpgsqlLogSequenceNumber(2), CommitTime = DateTime.UtcNow, Changes = changes.ToList(),
    };

    private static RowChange Ins(SourceRelation r, params string?[] v) => new() { Kind = ChangeKind.Insert, Relation = r, New = Row(v) };
    private static RowChange Upd(SourceRelation r, RowImage row, RowImage? old = null) => new() { Kind = ChangeKind.Update, Relation = r, New = row, Old = old };
    private static RowChange Del(SourceRelation r, string id) => new() { Kind = ChangeKind.Delete, Relation = r, Old = Row(id, null, null) };

    private static string Show(IEnumerable<RowChange> changes) =>
        string.Join("; ", changes.Select(c => $"{c.Kind} {c.Relation.Name} {(c.Old is null ? "" : "old=" + c.Old.Values[0] + " ")}{(c.New is null ? "" : string.Join(",", c.New.Values.Select((v, i) => c.New.IsUnchanged(i) ? "<u>" : v ?? "null")))}".TrimEnd()));

    [Fact]
    public void Updates_of_one_row_collapse_into_the_last_image_and_inserts_group_by_table()
    {
        var result = BatchCompactor.Compact([
            Tx(Upd(Items, Row("1", "a", "x")), Ins(Log, "10", "m1")),
            Tx(Upd(Items, Row("1", "b", "x")), Ins(Log, "11", "m2")),
            Tx(Upd(Items, Row("1", "c", "x")), Ins(Log, "12", "m3")),
        ], out var source);
        Assert.Equal(6, source);
        Assert.Equal("Update items 1,c,x; Insert log 10,m1; Insert log 11,m2; Insert log 12,m3", Show(result));
    }

    [Fact]
    public void Insert_then_updates_is_one_insert_and_insert_then_delete_is_nothing()
    {
        var result = BatchCompactor.Compact([
            Tx(Ins(Items, "1", "a", "x"), Ins(Items, "2", "b", "y")),
            Tx(Upd(Items, Row("1", "a2", "x")), Del(Items, "2")),
        ], out _);
        Assert.Equal("Insert items 1,a2,x", Show(result));
    }

    [Fact]
    public void Unchanged_toast_columns_take_the_earlier_value_or_stay_unchanged()
    {
        var toastUnchanged = new RowImage(["1", "b", null], [false, false, true]);
        var afterInsert = BatchCompactor.Compact([Tx(Ins(Items, "1", "a", "big")), Tx(Upd(Items, toastUnchanged))], out _);
        Assert.Equal("Insert items 1,b,big", Show(afterInsert));

        var twoUpdates = BatchCompactor.Compact([Tx(Upd(Items, new RowImage(["1", "a", null], [false, false, true]))), Tx(Upd(Items, toastUnchanged))], out _);
        Assert.Equal("Update items 1,b,<u>", Show(twoUpdates));
    }

    [Fact]
    public void Key_changes_keep_their_order_and_a_later_delete_removes_the_original_row()
    {
        var result = BatchCompactor.Compact([
            Tx(Upd(Items, Row("2", "a", "x"), old: Row("1", null, null))),
            Tx(Upd(Items, Row("2", "b", "x"))),
            Tx(Del(Items, "2")),
        ], out _);
        Assert.Equal("Delete items old=1", Show(result));
    }

    [Fact]
    public void Delete_then_reinsert_stays_two_changes_in_order()
    {
        var result = BatchCompactor.Compact([Tx(Del(Items, "1")), Tx(Ins(Items, "1", "new", "x"))], out _);
        Assert.Equal("Delete items old=1; Insert items 1,new,x", Show(result));
    }

    [Fact]
    public void Truncate_is_a_barrier_and_full_identity_rows_are_never_merged()
    {
        var truncate = new RowChange { Kind = ChangeKind.Truncate, Relation = Items, TruncatedRelations = [Items] };
        var result = BatchCompactor.Compact([
            Tx(Ins(Items, "1", "a", "x"), Ins(Full, "v"), Upd(Full, Row("w"), old: Row("v"))),
            Tx(truncate),
            Tx(Ins(Items, "1", "b", "x")),
        ], out _);
        Assert.Equal("Insert items 1,a,x; Insert full v; Update full old=v w; Truncate items; Insert items 1,b,x", Show(result));
    }
}
