using Navette.Config;
using Npgsql;

namespace Navette.Setup;

/// <summary>
/// The event triggers of <c>ddl: auto</c>: on every node that sends such a set, two event triggers
/// (<c>ddl_command_end</c> and <c>sql_drop</c>) record each DDL command in <c>navette.ddl</c>; nodes that send none
/// have them removed. They fire <c>ALWAYS</c>, also in apply sessions (replica role), so that a cascade's middle node
/// passes a change on; the replayed command itself is not captured again (navette.ddl_replaying).
/// </summary>
internal static class DdlCaptureSetup
{
    private static readonly (string Name, string Event)[] Triggers = [("navette_ddl_end", "ddl_command_end"), ("navette_ddl_drop", "sql_drop")];

    /// <summary>The nodes that send at least one set with <c>ddl: auto</c>.</summary>
    public static HashSet<string> CapturingNodes(NavetteConfig config) =>
        config.Subscriptions.Values.Where(s => s.Sets.Any(n => config.Sets[n].Ddl == DdlMode.Auto)).Select(s => s.From).ToHashSet(StringComparer.Ordinal);

    public static void Check(NavetteConfig config, HashSet<string> superusers, IReadOnlyDictionary<string, NpgsqlConnection> conns, List<string> problems)
    {
        foreach (var node in CapturingNodes(config).Where(n => conns.ContainsKey(n) && !superusers.Contains(n)))
        {
            var sets = config.Sets.Values.Where(s => s.Ddl == DdlMode.Auto && config.Subscriptions.Values.Any(x => x.From == node && x.Sets.Contains(s.Name)));
            problems.Add($"node {node}: set(s) {string.Join(", ", sets.Select(s => s.Name))} have ddl: auto, which captures DDL with an event trigger, " +
                         $"and only a superuser can create one; connect to {node} as a superuser, or use ddl: execute (navette execute)");
        }
    }

    public static async Task<List<string>> ReconcileAsync(NavetteConfig config, IReadOnlyDictionary<string, NpgsqlConnection> conns, CancellationToken ct)
    {
        var actions = new List<string>();
        var capturing = CapturingNodes(config);
        foreach (var (node, conn) in conns)
        {
            var existing = new HashSet<string>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'navette\\_ddl\\_%'", conn))
            await using (var r = await cmd.ExecuteReaderAsync(ct))
                while (await r.ReadAsync(ct)) existing.Add(r.GetString(0));
            await ExecAsync(conn, "DELETE FROM navette.ddl_publication", ct);
            if (capturing.Contains(node))
            {
                foreach (var set in config.Sets.Values.Where(s => s.Ddl == DdlMode.Auto && config.Subscriptions.Values.Any(x => x.From == node && x.Sets.Contains(s.Name))))
                foreach (var pattern in set.Tables)
                {
                    await using var add = new NpgsqlCommand("INSERT INTO navette.ddl_publication VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", conn);
                    add.Parameters.AddWithValue(Sql.PublicationName(set.Name));
                    add.Parameters.AddWithValue(Like(pattern.Schema, pattern.SchemaQuoted));
                    add.Parameters.AddWithValue(Like(pattern.Table, pattern.TableQuoted));
                    await add.ExecuteNonQueryAsync(ct);
                }
                foreach (var (name, evt) in Triggers.Where(t => !existing.Contains(t.Name)))
                {
                    await ExecAsync(conn, $"CREATE EVENT TRIGGER {Sql.Ident(name)} ON {evt} EXECUTE FUNCTION navette.capture_ddl(); " +
                                          $"ALTER EVENT TRIGGER {Sql.Ident(name)} ENABLE ALWAYS", ct);
                    actions.Add($"node {node}: event trigger {name} created (ddl: auto captures {evt})");
                }
            }
            else
            {
                foreach (var name in existing)
                {
                    await ExecAsync(conn, $"DROP EVENT TRIGGER {Sql.Ident(name)}", ct);
                    actions.Add($"node {node}: event trigger {name} dropped (no set it sends has ddl: auto)");
                }
            }
        }
        return actions;
    }

    /// <summary>A set's glob (<c>*</c>, <c>?</c>) as a LIKE pattern; quoted names match only themselves.</summary>
    internal static string Like(string glob, bool quoted)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var c in glob)
            sb.Append(c switch
            {
                '%' or '_' or '\\' => "\\" + c,
                '*' when !quoted => "%",
                '?' when !quoted => "_",
                _ => c.ToString(),
            });
        return sb.ToString();
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
