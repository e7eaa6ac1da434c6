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

    public static Command Failover()
    {
        var to = new Option<string>("--to") { Description = "The replica that becomes the origin (the most advanced direct replica of the lost origin)", Required = true };
        var force = new Option<bool>("--force") { Description = "Fail over even when another replica applied more of the lost origin (what only it had is lost)" };
        var cmd = new Command("failover", "The origin is lost: make NODE the origin, re-point the other replicas to it (brought level by compare and repair), fence the lost origin.")
            { to, force };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            using var logs = NavetteCommand.CreateLogs(pr.GetValue(NavetteCommand.VerboseOption));
            var result = await new Roles.Failover(config, logs.CreateLogger("navette.failover"), Console.Error.WriteLine).RunAsync(pr.GetValue(to)!, pr.GetValue(force), ct);
            foreach (var a in result.Actions) Console.WriteLine("  " + a);
            Console.WriteLine($"failover done: {result.Change.NewOrigin} is the origin (writable {result.Promoted.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s after the command started); " +
                              $"{result.Change.OldOrigin} is fenced until navette rejoin {result.Change.OldOrigin}");
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }

    public static Command Rejoin()
    {
        var node = new Argument<string>("node") { Description = "The origin lost at a failover (fenced in the file), now back" };
        var report = new Option<string?>("--report") { Description = "Where to write its transactions that never reached the others, as SQL (default: navette-rejoin-NODE-TIME.sql next to the file)" };
        var cmd = new Command("rejoin", "Bring back an origin lost at a failover: report its transactions that never reached the others (SQL file and conflict_log), make it identical to the origin, subscribe it as a replica.")
            { node, report };
        cmd.SetAction((pr, ct) => NavetteCommand.Guard(async () =>
        {
            var config = ConfigLoader.Load(pr.GetValue(NavetteCommand.ConfigOption)!);
            using var logs = NavetteCommand.CreateLogs(pr.GetValue(NavetteCommand.VerboseOption));
            var result = await new Roles.Rejoin(config, logs.CreateLogger("navette.rejoin"), Console.Error.WriteLine).RunAsync(pr.GetValue(node)!, pr.GetValue(report), ct);
            foreach (var a in result.Actions) Console.WriteLine("  " + a);
            Console.WriteLine($"rejoin done: {result.Node} is a replica of {result.Origin} ({result.Subscription.Name}); " +
                              (result.Transactions is null ? "its differing rows" : $"{result.Transactions.Count} transaction(s) that never reached {result.Origin}") +
                              $" are in {result.ReportPath}");
            return NavetteCommand.ExitOk;
        }));
        return cmd;
    }
}
