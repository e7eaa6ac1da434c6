using System.Globalization;
using Npgsql;

namespace Navette.Standby;

/// <summary>What a primary must offer before a standby is made from it, read once at the start of a command.</summary>
internal sealed record PrimaryFacts(
    IReadOnlyDictionary<string, string> Settings,
    bool InRecovery,
    bool Superuser,
    bool Replication,
    string User,
    int SendersInUse,
    int SlotsInUse,
    IReadOnlyList<string> Tablespaces)
{
    private static readonly string[] Names =
    [
        "server_version_num", "wal_level", "max_wal_senders", "max_replication_slots", "archive_mode", "archive_command",
        "archive_library", "archive_timeout", "data_directory", "config_file", "hba_file", "ident_file", "port",
        "wal_log_hints", "data_checksums", "full_page_writes", "wal_segment_size", "hot_standby",
    ];

    /// <summary>A setting's value, or null when the role may not read it (data_directory needs pg_read_all_settings).</summary>
    public string? this[string name] => Settings.TryGetValue(name, out var v) ? v : null;

    public int Int(string name) => int.Parse(this[name] ?? "0", CultureInfo.InvariantCulture);

    public long SegmentSize => long.Parse(this["wal_segment_size"] ?? "16777216", CultureInfo.InvariantCulture);

    public static async Task<PrimaryFacts> ReadAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        // pg_settings, not SHOW: it leaves out what the role may not see instead of failing. archive_timeout is in seconds.
        await using (var cmd = new NpgsqlCommand("SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)", conn))
        {
            cmd.Parameters.AddWithValue(Names);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                settings[r.GetString(0)] = Normalise(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2));
        }

        if (settings.GetValueOrDefault("archive_command") == "(disabled)")
            settings["archive_command"] = await ConfiguredArchiveCommandAsync(conn, ct);

        await using var facts = new NpgsqlCommand("""
            SELECT pg_is_in_recovery(), r.rolsuper, r.rolreplication, current_user::text,
                   (SELECT count(*)::int FROM pg_stat_replication),
                   (SELECT count(*)::int FROM pg_replication_slots),
                   ARRAY(SELECT spcname || ' (' || pg_tablespace_location(oid) || ')' FROM pg_tablespace WHERE pg_tablespace_location(oid) <> '')
              FROM pg_roles r WHERE r.rolname = current_user
            """, conn);
        await using var f = await facts.ExecuteReaderAsync(ct);
        await f.ReadAsync(ct);
        return new PrimaryFacts(settings, f.GetBoolean(0), f.GetBoolean(1), f.GetBoolean(2), f.GetString(3), f.GetInt32(4), f.GetInt32(5), f.GetFieldValue<string[]>(6));
    }

    /// <summary>With archive_mode off, SHOW says "(disabled)": the configuration files say what would run once it is on.</summary>
    private static async Task<string> ConfiguredArchiveCommandAsync(NpgsqlConnection conn, CancellationToken ct)
    {
        try
        {
            return await PgQuery.ScalarAsync<string>(conn,
                "SELECT setting FROM pg_file_settings WHERE name = 'archive_command' AND error IS NULL ORDER BY seqno DESC LIMIT 1", ct) ?? string.Empty;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            return string.Empty;
        }
    }

    private static string Normalise(string name, string value, string? unit) => (name, unit) switch
    {
        ("wal_segment_size", "B") => value,
        ("wal_segment_size", "8kB") => (long.Parse(value, CultureInfo.InvariantCulture) * 8192).ToString(CultureInfo.InvariantCulture),
        ("wal_segment_size", "MB") => (long.Parse(value, CultureInfo.InvariantCulture) << 20).ToString(CultureInfo.InvariantCulture),
        _ => value,
    };
}
