using System.CommandLine;
using System.Globalization;
using Navette.Config;
using Navette.Roles;

namespace Navette.Cli;

/// <summary><c>navette switchover|failover|rejoin</c>: changes of origin in a one-way topology.</summary>
internal static class RoleCommands
{
    public static Command Switchover()
    {
        var to = new Option<string>("--to") { Description = "The replica that becomes the origin", Required = true };
        var grace = new Option<double>("--grace")
        {
            Description = "Seconds the old origin's sessions get to finish their transaction before they are terminated",
            DefaultValueFactory = _ => Roles.Switchover.DefaultGrace.TotalSeconds,
        };
        var cmd = new Command("switchover", "Planned change of origin: stop writes on the origin, let every replica apply everything, make NODE the origin and re-point the others (the old origin becomes a replica). Needs navette run.")
            { to, grace };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            if (pr.GetValue(grace) is < 0 or > 3600)
                throw new NavetteException($"--grace {pr.GetValue(grace)}: use a number of seconds from 0 to 3600");
            using var logs = NavetteCommand.CreateLogs(pr.GetValue(NavetteCommand.VerboseOption));
            var result = await new Roles.Switchover(config, logs.CreateLogger("navette.switchover"), Console.Error.WriteLine)
                .RunAsync(pr.GetValue(to)!, TimeSpan.FromSeconds(pr.GetValue(grace)), ct);
            foreach (var a in result.Actions) Console.WriteLine("  " + a);
            Console.WriteLine($"switchover done: {result.Change.NewOrigin} is the origin; writes were unavailable for {result.Window.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)} s");
            if (!result.HandedOver)
            {
                Console.Error.WriteLine("warning: navette run has not picked up the new subscriptions yet; restart it, then run navette apply");
                return NavetteCommand.ExitTimeout;
            }
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }
}
