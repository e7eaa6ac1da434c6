using BenchmarkDotNet.Attributes;
using Navette.Capture;

namespace Navette.Benchmarks;

/// <summary>
/// The part of decoding Navette owns: turning values Npgsql has already decoded into RowImage, RowChange and
/// SourceTransaction for one batch. Npgsql's own pgoutput parsing (and the strings it allocates) needs a live
/// replication connection and is not measured here.
/// </summary>
public class DecodingBenchmarks
{
    private DecodedTransaction[] _decoded = [];

    [Params("tpcb", "inserts")]
    public string Batch { get; set; } = "tpcb";

    [GlobalSetup]
    public void Setup() => _decoded = Workload.Named(Batch).Decoded;

    [Benchmark]
    public object MaterialiseBatch()
    {
        var batch = new List<SourceTransaction>(_decoded.Length);
        foreach (var tx in _decoded) batch.Add(Workload.Materialise(tx));
        return batch;
    }
}
