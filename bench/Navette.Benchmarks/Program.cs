using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// ShortRun (3 warm-up and 3 measured iterations) keeps the whole suite to a few minutes on two cores: enough to see a
// regression of some percent in time, and any change in allocations. In process: the out-of-process toolchain
// rebuilds Navette.Core without the shared compiler, which takes longer on two cores than its 2-minute build timeout.
// The benchmark classes are public because BenchmarkDotNet runs only public ones; the rest stays internal.
var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
    .AddDiagnoser(MemoryDiagnoser.Default);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
