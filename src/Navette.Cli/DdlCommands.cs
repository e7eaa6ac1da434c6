using System.CommandLine;
using Navette.Config;
using Navette.Ddl;

namespace Navette.Cli;

/// <summary><c>navette execute</c> and <c>navette skip-ddl</c>: schema changes that follow the data.</summary>
internal static class DdlCommands
{
    public static Command Execute()
    {
        var set = new Option<string>("--set") { Description = "The set whose nodes all run the script", Required = true };
        var node = new Option<string?>("--node") { Description = "The node to run it on first (default: the set's origin; required when several nodes send the set)" };
        var script = new Argument<string>("script") { Description = "The SQL file (run in one transaction)" };
        var cmd = new Command("execute", "Run a SQL script on a set's origin in one transaction, and on every node receiving the set at the same point of its stream.")
            { set, node, script };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            using var logs = NavetteCommand.CreateLogs(pr.GetValue(NavetteCommand.VerboseOption));
            var run = await new ScriptExecutor(config, logs.CreateLogger("navette.execute")).RunAsync(pr.GetValue(set)!, pr.GetValue(script)!, pr.GetValue(node), ct);
            Console.WriteLine($"{pr.GetValue(script)}: committed on node {run.Node} in {run.Took.TotalSeconds:F2} s (schema change {run.Id}); " +
                              "every subscription carrying the set runs it where it arrives in its stream (navette wait waits for them)");
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }

    public static Command SkipDdl()
    {
        var subscription = new Option<string>("--subscription", "-s") { Description = "The subscription stopped on the schema change", Required = true };
        var id = new Option<long>("--id") { Description = "The schema change's id (named in the subscription's error)", Required = true };
        var cmd = new Command("skip-ddl", "Let a subscription stopped on a schema change that cannot run on its target pass over it (the target keeps its own schema).")
            { subscription, id };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            await DdlSkipper.SkipAsync(config, pr.GetValue(subscription)!, pr.GetValue(id), ct);
            Console.WriteLine($"subscription {pr.GetValue(subscription)} passes over schema change {pr.GetValue(id)} at its next attempt (within a minute while navette run runs)");
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }
}
