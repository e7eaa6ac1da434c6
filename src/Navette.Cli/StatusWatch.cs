using System.Globalization;
using System.Text.Json;
using Navette.Status;

namespace Navette.Cli;

/// <summary>
/// <c>navette status --watch</c>: the status table (or JSON) read again every interval. On a terminal the screen is
/// redrawn in place; redirected to a file or a pipe, each reading is appended under a timestamp, without escape codes.
/// </summary>
internal static class StatusWatch
{
    private const string Home = "\u001b[H";
    private const string ClearBelow = "\u001b[J";
    private const string HideCursor = "\u001b[?25l";
    private const string ShowCursor = "\u001b[?25h";

    public static async Task RunAsync(StatusReader reader, TimeSpan interval, bool json, TextWriter output, CancellationToken ct)
    {
        var terminal = !Console.IsOutputRedirected;
        if (terminal) output.Write(HideCursor + "\u001b[2J");
        try
        {
            using var timer = new PeriodicTimer(interval);
            do
            {
                var rows = await reader.ReadAsync(ct);
                var frame = new StringWriter();
                frame.WriteLine($"navette status, {DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}, every {interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s (Ctrl+C to stop)");
                frame.WriteLine();
                if (json) frame.WriteLine(JsonSerializer.Serialize(rows, StatusJson.Options));
                else StatusTable.Write(frame, rows);
                if (terminal)
                    // Each line is cleared to its end, then everything under the frame: no flicker, no leftovers.
                    output.Write(Home + frame.ToString().Replace("\n", "\u001b[K\n", StringComparison.Ordinal) + ClearBelow);
                else
                    output.WriteLine(frame.ToString());
                await output.FlushAsync(ct);
            } while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            if (terminal) output.Write(ShowCursor);
        }
    }
}
