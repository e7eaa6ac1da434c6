using Navette.Config;

namespace Navette.Standby;

/// <summary>
/// The recovery settings that make a data directory a standby of its primary (standby.signal plus
/// postgresql.auto.conf), written by <c>standby create</c> and <c>standby rewind</c>. primary_conninfo may hold the
/// node's password: PostgreSQL itself keeps it there (pg_basebackup -R does the same); navette never prints it.
/// </summary>
internal static class StandbySettings
{
    public const string SignalFile = "standby.signal";

    public static async Task WriteAsync(
        NodeConfig primary,
        StandbyConfig s,
        double restoreMaxWaitSeconds,
        IReadOnlyList<KeyValuePair<string, string?>> extra,
        string comment,
        CancellationToken ct)
    {
        // With streaming, the archive is only a fallback: answering "not there" at once lets the walreceiver take over.
        var restoreWait = s.Mode == StandbyMode.Archive ? restoreMaxWaitSeconds : 0;
        var settings = new List<KeyValuePair<string, string?>>(extra)
        {
            new("hot_standby", s.Hot ? "on" : "off"),
            new("primary_conninfo", s.Mode == StandbyMode.Streaming ? StandbyConnInfo.ToPrimary(primary, s.Name) : null),
            new("primary_slot_name", s.Slot ? s.SlotName : null),
            new("restore_command", s.Archive is null ? null : NavetteInvocation.RestoreCommand(s.Archive, restoreWait)),
            new("recovery_min_apply_delay", s.Delay),
            new("recovery_target_timeline", "latest"),
        };
        await ServerConf.SetAsync(s.PgData, settings, comment, ct);
        await ServerConf.WriteOwnedAsync(Path.Combine(s.PgData, SignalFile), string.Empty, ct);
    }
}
