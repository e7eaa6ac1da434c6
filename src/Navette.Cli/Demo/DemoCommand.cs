using System.CommandLine;

namespace Navette.Cli.Demo;

internal static class DemoCommand
{
    public static Command Create(Option<bool> verbose)
    {
        var cmd = new Command("demo", "Create throwaway local clusters, replicate a workload between them, and check they end identical.");
        cmd.SetAction((_, _) => Task.FromResult(0));
        _ = verbose;
        return cmd;
    }
}
