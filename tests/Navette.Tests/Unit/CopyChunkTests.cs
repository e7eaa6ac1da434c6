using Navette.Sync;
using Xunit;

namespace Navette.Tests.Unit;

public sealed class CopyChunkTests
{
    private static CopyTable Table(long pages, bool partitioned = false) =>
        new("public", "t", ["id"], Binary: true, Partitioned: partitioned, SizeBytes: pages * 8192, MainPages: pages);

    [Fact]
    public void Small_and_partitioned_tables_are_copied_whole()
    {
        Assert.Equal("\"public\".\"t\" (\"id\")", Assert.Single(CopyChunk.Plan(Table(100))).CopySource);
        Assert.Equal("(SELECT \"id\" FROM \"public\".\"t\")", Assert.Single(CopyChunk.Plan(Table(100_000, partitioned: true))).CopySource);
    }

    [Fact]
    public void Large_tables_are_split_into_page_ranges_that_cover_every_page_once_with_open_ends()
    {
        var pages = 3 * CopyChunk.TargetBytes / 8192 + 5;
        var chunks = CopyChunk.Plan(Table(pages)).ToList();
        Assert.Equal(4, chunks.Count);
        Assert.Null(chunks[0].FromPage);
        Assert.Null(chunks[^1].ToPage);
        for (var i = 1; i < chunks.Count; i++)
            Assert.Equal(chunks[i - 1].ToPage, chunks[i].FromPage);
        Assert.Equal($"(SELECT \"id\" FROM ONLY \"public\".\"t\" WHERE ctid >= '({chunks[1].FromPage},0)'::tid AND ctid < '({chunks[1].ToPage},0)'::tid)", chunks[1].CopySource);
        Assert.EndsWith($"WHERE ctid >= '({chunks[^1].FromPage},0)'::tid)", chunks[^1].CopySource);
    }
}
