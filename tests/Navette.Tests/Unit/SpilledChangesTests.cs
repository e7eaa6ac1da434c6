using Navette.Capture;
using Xunit;

namespace Navette.Tests.Unit;

public sealed class SpilledChangesTests
{
    private static SourceRelation Relation(string name) => new()
    {
        Id = 1, Schema = "public", Name = name, Columns = ["id", "v", "doc"], TypeOids = [23, 25, 25], KeyColumns = [0], IdentityFull = false,
    };

    [Fact]
    public async Task Changes_read_back_equal_those_written_in_order_and_across_blocks()
    {
        var a = Relation("a");
        var b = Relation("b");
        var written = new List<RowChange>();
        for (var i = 0; i < 5000; i++)
        {
            written.Add(new RowChange { Kind = ChangeKind.Insert, Relation = i % 2 == 0 ? a : b, New = new RowImage([i.ToString(), i % 5 == 0 ? null : $"ünïcode ✓ {i}", new string('x', i % 300)], null) });
            if (i % 10 == 0)
                written.Add(new RowChange { Kind = ChangeKind.Update, Relation = a, Old = new RowImage([i.ToString(), null, null], null), New = new RowImage([(i + 1).ToString(), "", null], [false, false, true]) });
            if (i % 100 == 0)
                written.Add(new RowChange { Kind = ChangeKind.Truncate, Relation = a, TruncatedRelations = [a, b], TruncateCascade = true });
        }
        await using var spill = SpilledChanges.Create(null);
        var pending = new List<RowChange>();
        foreach (var c in written)
        {
            pending.Add(c);
            if (pending.Count == 777) await spill.WriteAsync(pending, CancellationToken.None);
        }
        await spill.CompleteAsync(pending, CancellationToken.None);
        Assert.Equal(written.Count, spill.Count);
        Assert.Equal(2, spill.Relations.Count);

        // Read twice: the row-by-row fallback reads the file again.
        for (var pass = 0; pass < 2; pass++)
        {
            var read = new List<RowChange>();
            await foreach (var block in spill.ReadAsync(CancellationToken.None)) read.AddRange(block);
            Assert.Equal(written.Count, read.Count);
            for (var i = 0; i < written.Count; i++)
            {
                var (w, r) = (written[i], read[i]);
                Assert.Equal(w.Kind, r.Kind);
                Assert.Same(w.Relation, r.Relation);
                Assert.Equal(w.New?.Values, r.New?.Values);
                Assert.Equal(w.New?.Unchanged, r.New?.Unchanged);
                Assert.Equal(w.Old?.Values, r.Old?.Values);
                Assert.Equal(w.TruncatedRelations?.Length, r.TruncatedRelations?.Length);
                Assert.Equal(w.TruncateCascade, r.TruncateCascade);
                Assert.Equal(w.TruncateRestartIdentity, r.TruncateRestartIdentity);
            }
        }
    }

    [Fact]
    public async Task Tables_being_joined_are_left_out_when_read_back()
    {
        var a = Relation("a");
        var b = Relation("b");
        await using var spill = SpilledChanges.Create(null);
        await spill.CompleteAsync([
            new RowChange { Kind = ChangeKind.Insert, Relation = a, New = new RowImage(["1", "x", null], null) },
            new RowChange { Kind = ChangeKind.Insert, Relation = b, New = new RowImage(["2", "y", null], null) },
        ], CancellationToken.None);
        spill.SkipTables = new HashSet<(string, string)> { ("public", "a") };
        var read = new List<RowChange>();
        await foreach (var block in spill.ReadAsync(CancellationToken.None)) read.AddRange(block);
        Assert.Equal("b", Assert.Single(read).Relation.Name);
    }
}
