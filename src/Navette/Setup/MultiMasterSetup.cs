using Navette.Config;
using Npgsql;

namespace Navette.Setup;

/// <summary>
/// What <c>navette apply</c> checks and installs for tables whose conflicts are handled: commit timestamps on the
/// nodes that apply them, a key to detect conflicts on, the tombstone trigger that remembers local deletes, and
/// sequences that do not hand out the same values on two writers.
/// </summary>
internal sealed class MultiMasterSetup(NavetteConfig config, IReadOnlyDictionary<(string Node, string Set), List<SourceTable>> resolved)
{
    public const string TriggerName = "navette_tombstone";

    /// <summary>Per node: the tables whose local deletes must leave a tombstone, with their key columns.</summary>
    private readonly Dictionary<string, Dictionary<(string Schema, string Name), string[]?>> _triggers = new();

    /// <summary>Nodes applying at least one subscription with conflict handling.</summary>
    private IEnumerable<string> ResolvingNodes => config.Subscriptions.Values
        .Where(config.ResolvesConflicts).Select(s => s.To).Distinct();

    public async Task CheckAsync(Dictionary<string, NpgsqlConnection> conns, List<string> problems, CancellationToken ct)
    {
        foreach (var node in ResolvingNodes.Where(conns.ContainsKey))
        {
            var settings = await NodeInspector.SettingsAsync(conns[node], ct);
            if (settings.GetValueOrDefault("track_commit_timestamp") != "on")
                problems.Add($"node {node}: track_commit_timestamp is off, but it resolves conflicts, which needs the commit time and origin of every row; " +
                             "run ALTER SYSTEM SET track_commit_timestamp = on; and restart PostgreSQL");
            _triggers[node] = new Dictionary<(string, string), string[]?>();
        }

        foreach (var sub in config.Subscriptions.Values.Where(s => _triggers.ContainsKey(s.To) && conns.ContainsKey(s.To)))
        {
            foreach (var setName in sub.Sets)
            {
                var set = config.Sets[setName];
                if (!config.ResolvesConflicts(sub, setName) || !resolved.TryGetValue((sub.From, setName), out var tables)) continue;
                foreach (var table in tables.Where(t => set.PolicyFor(t.Schema, t.Name) is not null))
                {
                    if (_triggers[sub.To].ContainsKey((table.Schema, table.Name))) continue;
                    // Null: missing on the target, reported by the table checks unless copy_schema creates it.
                    var key = await NodeInspector.KeyColumnsAsync(conns[sub.To], table, ct);
                    if (key is { Length: 0 })
                    {
                        problems.Add($"set {setName}: table {table} on node {sub.To} has no primary key (or replica identity index), so conflicts on it cannot be detected; " +
                                     $"add a primary key (REPLICA IDENTITY FULL is not enough where several nodes write)");
                        continue;
                    }
                    _triggers[sub.To][(table.Schema, table.Name)] = key;
                }
            }
        }

        await CheckSequencesAsync(conns, problems, ct);
    }

    /// <summary>Installs, updates and removes the tombstone triggers; returns what it did.</summary>
    public async Task<List<string>> ReconcileAsync(Dictionary<string, NpgsqlConnection> conns, CancellationToken ct)
    {
        var actions = new List<string>();
        foreach (var (node, conn) in conns)
        {
            var wanted = _triggers.GetValueOrDefault(node) ?? new Dictionary<(string, string), string[]?>();
            var existing = new Dictionary<(string, string), string>();
            await using (var cmd = new NpgsqlCommand("""
                SELECT n.nspname, c.relname, t.tgargs
                  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE t.tgname = $1 AND NOT t.tgisinternal
                """, conn))
            {
                cmd.Parameters.AddWithValue(TriggerName);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct)) existing[(r.GetString(0), r.GetString(1))] = System.Text.Encoding.UTF8.GetString(r.GetFieldValue<byte[]>(2)).TrimEnd('\0');
            }
            foreach (var ((schema, name), known) in wanted)
            {
                var key = known ?? await NodeInspector.KeyColumnsAsync(conn, new SourceTable(schema, name, 'r', 'p', 'd', true, false), ct);
                if (key is not { Length: > 0 }) continue;
                var argument = string.Join(", ", key.Select(Sql.Ident));
                var table = Sql.Qualified(schema, name);
                if (existing.TryGetValue((schema, name), out var args) && args == argument) continue;
                await ExecAsync(conn, $"DROP TRIGGER IF EXISTS {Sql.Ident(TriggerName)} ON {table}; " +
                                      $"CREATE TRIGGER {Sql.Ident(TriggerName)} AFTER DELETE ON {table} REFERENCING OLD TABLE AS navette_old " +
                                      $"FOR EACH STATEMENT EXECUTE FUNCTION navette.record_tombstones({Sql.Literal(argument)})", ct);
                actions.Add($"node {node}: table {schema}.{name} now remembers its deletes for conflict detection (trigger {TriggerName})");
            }
            foreach (var (schema, name) in existing.Keys.Where(k => !wanted.ContainsKey(k)))
            {
                await ExecAsync(conn, $"DROP TRIGGER {Sql.Ident(TriggerName)} ON {Sql.Qualified(schema, name)}; " +
                                      $"DELETE FROM navette.tombstone WHERE table_oid = {Sql.Literal(Sql.Qualified(schema, name))}::regclass", ct);
                actions.Add($"node {node}: trigger {TriggerName} removed from {schema}.{name} (its conflicts are no longer handled)");
            }
        }
        return actions;
    }

    /// <summary>
    /// Sequences feeding the tables of a set written on several nodes must give each node its own values (same
    /// increment, different remainders), or two nodes insert the same key and one of the rows is lost to the conflict.
    /// </summary>
    private async Task CheckSequencesAsync(Dictionary<string, NpgsqlConnection> conns, List<string> problems, CancellationToken ct)
    {
        foreach (var set in config.Sets.Values.Where(s => s.MultiMaster))
        {
            var writers = Writers(set.Name).Where(conns.ContainsKey).ToList();
            if (writers.Count < 2) continue;
            var bySequence = new Dictionary<string, List<(string Node, long Start, long Increment)>>();
            foreach (var node in writers)
            {
                foreach (var table in TablesOf(set.Name))
                    foreach (var seq in await SequencesAsync(conns[node], table.Schema, table.Name, ct))
                    {
                        if (!bySequence.TryGetValue(seq.Name, out var list)) bySequence[seq.Name] = list = new();
                        list.Add((node, seq.Start, seq.Increment));
                    }
            }
            foreach (var (sequence, list) in bySequence.Where(kv => kv.Value.Count >= 2))
            {
                var increments = list.Select(x => x.Increment).Distinct().ToList();
                var remainders = list.Select(x => ((x.Start % x.Increment) + x.Increment) % x.Increment).ToList();
                if (increments.Count == 1 && Math.Abs(increments[0]) >= list.Count && remainders.Distinct().Count() == list.Count) continue;
                problems.Add($"set {set.Name}: sequence {sequence} hands out the same values on {string.Join(" and ", list.Select(x => x.Node))} " +
                             $"(increment {string.Join("/", list.Select(x => x.Increment))}), so rows inserted on two nodes collide; " +
                             $"run navette sequences partition -c {config.SourcePath} --set {set.Name} to give each node its own values");
            }
        }
    }

    /// <summary>The nodes that both send and receive the set.</summary>
    public IEnumerable<string> Writers(string set)
    {
        var subs = config.Subscriptions.Values.Where(s => s.Sets.Contains(set)).ToList();
        var senders = subs.Select(s => s.From).ToHashSet();
        return subs.Select(s => s.To).Where(senders.Contains).Distinct()
            .OrderBy(n => config.Sets[set].Mesh?.Nodes.ToList().IndexOf(n) ?? 0).ThenBy(n => config.Nodes.Keys.ToList().IndexOf(n));
    }

    private IEnumerable<SourceTable> TablesOf(string set) =>
        resolved.Where(kv => kv.Key.Set == set).SelectMany(kv => kv.Value).DistinctBy(t => (t.Schema, t.Name));

    /// <summary>The sequences owned by a table's columns (serial and identity): name, start, increment.</summary>
    public static async Task<List<(string Name, long Start, long Increment)>> SequencesAsync(NpgsqlConnection conn, string schema, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            SELECT format('%I.%I', sn.nspname, s.relname), q.seqstart, q.seqincrement
              FROM pg_depend d
              JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
              JOIN pg_namespace sn ON sn.oid = s.relnamespace
              JOIN pg_sequence q ON q.seqrelid = s.oid
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
               AND d.refobjid = to_regclass(format('%I.%I', $1::text, $2::text))
             ORDER BY 1
            """, conn);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(table);
        var result = new List<(string, long, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add((r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
        return result;
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
