using System.Globalization;

namespace Navette.Standby;

/// <summary>What kind of file PostgreSQL archives or asks back, by its name.</summary>
internal enum WalFileKind
{
    /// <summary><c>000000010000000000000003</c>: a WAL segment. Recovery waits for the next one to arrive.</summary>
    Segment,

    /// <summary><c>00000002.history</c>: a timeline history file. PostgreSQL probes for ones that may not exist.</summary>
    History,

    /// <summary><c>000000010000000000000003.00000028.backup</c>: a backup history file.</summary>
    Backup,

    /// <summary><c>000000010000000000000003.partial</c>: the last, incomplete segment of a timeline left at promotion.</summary>
    Partial,

    /// <summary>Anything else.</summary>
    Other,
}

internal static class WalFileName
{
    public static WalFileKind Classify(string name)
    {
        if (IsSegment(name))
            return WalFileKind.Segment;
        if (name.Length == 16 && name.EndsWith(".history", StringComparison.Ordinal) && IsHex(name.AsSpan(0, 8)))
            return WalFileKind.History;
        if (name.Length == 40 && name.EndsWith(".backup", StringComparison.Ordinal) && IsSegment(name[..24]) && name[24] == '.' && IsHex(name.AsSpan(25, 8)))
            return WalFileKind.Backup;
        if (name.Length == 32 && name.EndsWith(".partial", StringComparison.Ordinal) && IsSegment(name[..24]))
            return WalFileKind.Partial;
        return WalFileKind.Other;
    }

    public static bool IsSegment(string name) => name.Length == 24 && IsHex(name);

    /// <summary>The timeline and segment number of a segment name, for a given segment size.</summary>
    public static (uint Timeline, ulong Segment) Parse(string segmentName, long segmentSize)
    {
        var tli = uint.Parse(segmentName.AsSpan(0, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var log = ulong.Parse(segmentName.AsSpan(8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var seg = ulong.Parse(segmentName.AsSpan(16, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (tli, log * SegmentsPerXLogId(segmentSize) + seg);
    }

    /// <summary>The LSN where a segment starts.</summary>
    public static ulong StartLsn(string segmentName, long segmentSize) => Parse(segmentName, segmentSize).Segment * (ulong)segmentSize;

    /// <summary>The name of the segment holding <paramref name="lsn"/> on <paramref name="timeline"/>.</summary>
    public static string SegmentOf(uint timeline, ulong lsn, long segmentSize)
    {
        var segment = lsn / (ulong)segmentSize;
        var perId = SegmentsPerXLogId(segmentSize);
        return string.Create(CultureInfo.InvariantCulture, $"{timeline:X8}{segment / perId:X8}{segment % perId:X8}");
    }

    private static ulong SegmentsPerXLogId(long segmentSize) => 0x1_0000_0000UL / (ulong)segmentSize;

    private static bool IsHex(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'A' and <= 'F')))
                return false;
        }

        return true;
    }
}
