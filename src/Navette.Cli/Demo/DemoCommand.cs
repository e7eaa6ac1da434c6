using System.CommandLine;

namespace Navette.Cli.Demo;

internal static class DemoCommand
{
    public static Command Create(Option<bool> verbose)
    {
        var seconds = new Option<int>("--seconds") { Description = "How long the write workload runs", DefaultValueFactory = _ => 20 };
        var keep = new Option<bool>("--keep") { Description = "Leave the clusters running (and print how to reach them) instead of removing them" };
        var dir = new Option<string?>("--dir") { Description = "Folder for the clusters (default: a new temporary folder)" };
        var cmd = new Command("demo", "Create throwaway local clusters, replicate a live workload between them (origin, two replicas, a cascade), and check every node ends identical.")
        {
            seconds, keep, dir,
        };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(() =>
            new DemoRunner(pr.GetValue(seconds), pr.GetValue(keep), pr.GetValue(dir), pr.GetValue(verbose), Console.Out).RunAsync(ct)));
        return cmd;
    }
}
