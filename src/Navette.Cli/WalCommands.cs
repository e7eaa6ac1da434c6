using System.CommandLine;
using System.Globalization;
using Navette.Standby;

namespace Navette.Cli;

/// <summary>
/// <c>navette wal-archive</c> and <c>navette wal-restore</c>: PostgreSQL runs them as archive_command and
/// restore_command. They write to stderr (the server log) and must answer with 0 or 1 only: an exit code above 125
/// or a crash would make PostgreSQL abort recovery, so every error becomes "not done, try again".
/// </summary>
internal static class WalCommands
{
    public static Command Archive(Option<bool> verbose)
    {
        var archive = new Argument<string>("ARCHIVE") { Description = "Archive folder (must exist)" };
        var path = new Argument<string>("PATH") { Description = "%p: the WAL file to archive, relative to the data directory" };
        var name = new Argument<string>("NAME") { Description = "%f: its file name" };
        var cmd = new Command("wal-archive",
            "archive_command for a primary: copy one WAL file into an archive folder atomically (temporary file, fsync, rename); "
            + "an identical file already there is success, a different one is refused.")
        {
            archive, path, name,
        };
        cmd.SetAction((pr, ct) => Contained("wal-archive", pr.GetValue(verbose), (log, _) =>
            WalArchiver.RunAsync(pr.GetValue(archive)!, pr.GetValue(path)!, pr.GetValue(name)!, log, ct)));
        return cmd;
    }

    public static Command Restore(Option<bool> verbose)
    {
        var archive = new Argument<string>("ARCHIVE") { Description = "Archive folder" };
        var name = new Argument<string>("NAME") { Description = "%f: the WAL file wanted" };
        var path = new Argument<string>("PATH") { Description = "%p: where to put it, relative to the data directory" };
        var poll = new Option<double>("--poll-interval") { Description = "Seconds between looks for a file not there yet", DefaultValueFactory = _ => 0.2 };
        var maxWait = new Option<double>("--max-wait") { Description = "Seconds to wait for a WAL segment before answering 'not available' (history files are never waited for)", DefaultValueFactory = _ => 60 };
        var trigger = new Option<string?>("--trigger") { Description = "A file whose appearance requests promotion (pg_standby's trigger file)" };
        var pgdata = new Option<string?>("--pgdata") { Description = "The standby's data directory (default: the current directory, where PostgreSQL runs restore_command)" };
        var cmd = new Command("wal-restore",
            "restore_command for a standby (pg_standby's job): wait for a WAL file to reach the archive, copy it whole to its "
            + "destination, stop waiting when promotion is requested.")
        {
            archive, name, path, poll, maxWait, trigger, pgdata,
        };
        cmd.SetAction((pr, ct) => Contained("wal-restore", pr.GetValue(verbose), (log, debug) =>
        {
            var request = new WalRestoreRequest(
                pr.GetValue(archive)!, pr.GetValue(name)!, pr.GetValue(path)!,
                pr.GetValue(pgdata) ?? Environment.CurrentDirectory,
                TimeSpan.FromSeconds(Math.Max(0.01, pr.GetValue(poll))),
                TimeSpan.FromSeconds(Math.Max(0, pr.GetValue(maxWait))),
                pr.GetValue(trigger));
            return WalRestorer.RunAsync(request, log, debug, ct);
        }));
        return cmd;
    }

    private static async Task<int> Contained(string command, bool verbose, Func<Action<string>, Action<string>, Task<int>> body)
    {
        void Log(string message) =>
            Console.Error.WriteLine($"{DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture)} UTC navette {command}: {message}");
        try
        {
            return await body(Log, verbose ? Log : _ => { }) == 0 ? 0 : 1;
        }
        catch (OperationCanceledException)
        {
            Log("interrupted");
            return 1;
        }
        catch (Exception e)
        {
            Log($"failed: {e.Message}");
            return 1;
        }
    }
}
