using System.Globalization;

namespace Navette.Standby;

/// <summary>
/// Where archive recovery is, as <c>navette wal-restore</c> saw it: the last segment PostgreSQL asked for and the last
/// one handed over, kept in the standby's data directory. A standby without hot_standby answers no queries, so this
/// is how <c>navette standby status</c> and <c>promote</c> know how far it got. PostgreSQL asks for a segment only once
/// it replayed the previous ones, so "wanted" is a lower bound of the replay position.
/// </summary>
internal static class RestoreProgress
{
    public const string FileName = "navette-restore.state";
    public const string Wanted = "wanted";
    public const string Restored = "restored";

    public sealed record Entry(string Segment, DateTime At);

    /// <summary>Records one event; never fails the restore (the state is only informative).</summary>
    public static void Record(string dataDir, string what, string segment)
    {
        try
        {
            var entries = Read(dataDir);
            entries[what] = new Entry(segment, DateTime.UtcNow);
            var path = Path.Combine(dataDir, FileName);
            var temp = path + ".tmp";
            File.WriteAllLines(temp, entries.Select(e => $"{e.Key} {e.Value.Segment} {e.Value.At.ToString("O", CultureInfo.InvariantCulture)}"));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    public static Dictionary<string, Entry> Read(string dataDir)
    {
        var result = new Dictionary<string, Entry>(StringComparer.Ordinal);
        try
        {
            var path = Path.Combine(dataDir, FileName);
            if (!File.Exists(path))
                return result;
            foreach (var line in File.ReadAllLines(path))
            {
                var parts = line.Split(' ', 3);
                if (parts.Length == 3 && WalFileName.IsSegment(parts[1])
                    && DateTime.TryParse(parts[2], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var at))
                    result[parts[0]] = new Entry(parts[1], at);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return result;
    }
}
