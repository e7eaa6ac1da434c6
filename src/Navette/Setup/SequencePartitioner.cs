using Navette.Config;
using Npgsql;

namespace Navette.Setup;

/// <summary>
/// <c>navette sequences partition</c>: gives each node writing a set its own values of every sequence the set's tables
/// own (serial and identity columns): the same increment on every node (the step), a different remainder per node
/// (node i of the set's writers hands out values ≡ i+1 mod step), each starting above every value any node used so far.
/// </summary>
internal sealed class SequencePartitioner(NavetteConfig config)
{
    public const int DefaultStep = 10;

    public async Task<List<string>> PartitionAsync(string setName, int? step, bool dryRun, CancellationToken ct)
    {
        if (!config.Sets.TryGetValue(setName, out var set))
            throw new NavetteException($"no set named {setName} in {config.SourcePath}; defined: {string.Join(", ", config.Sets.Keys)}");
        var writers = new MultiMasterSetup(config, new Dictionary<(string, string), List<SourceTable>>()).Writers(setName).ToList();
        if (writers.Count < 2)
            throw new NavetteException($"set {setName} is written on {writers.Count} node(s) only; partitioning its sequences is for sets written on several nodes (a mesh)");
        var by = step ?? Math.Max(DefaultStep, writers.Count);
        if (by < writers.Count)
            throw new NavetteException($"--step {by} is smaller than the {writers.Count} nodes writing set {setName}; each node needs its own remainder");

        var conns = new Dictionary<string, NpgsqlConnection>();
        var actions = new List<string>();
        try
        {
            foreach (var node in writers)
            {
                var conn = new NpgsqlConnection(config.Nodes[node].ToNpgsqlConnectionString());
                await conn.OpenAsync(ct);
                conns[node] = conn;
            }
            var tables = (await NodeInspector.TablesAsync(conns[writers[0]], ct)).Where(t => set.Matches(t.Schema, t.Name)).ToList();
            var sequences = new Dictionary<string, (long Max, List<string> Nodes)>();
            foreach (var node in writers)
                foreach (var table in tables)
                    foreach (var (name, _, increment) in await MultiMasterSetup.SequencesAsync(conns[node], table.Schema, table.Name, ct))
                    {
                        if (increment < 0)
                            throw new NavetteException($"sequence {name} on node {node} counts down (increment {increment}); partition it by hand");
                        var used = await HighestUsedAsync(conns[node], name, ct);
                        sequences[name] = sequences.TryGetValue(name, out var s) ? (Math.Max(s.Max, used), [.. s.Nodes, node]) : (used, [node]);
                    }
            if (sequences.Count == 0)
            {
                actions.Add($"set {setName}: its tables own no sequence; nothing to partition");
                return actions;
            }
            foreach (var (name, (max, nodes)) in sequences)
            {
                for (var i = 0; i < writers.Count; i++)
                {
                    if (!nodes.Contains(writers[i])) continue;
                    var remainder = (i + 1) % by;
                    var start = max + 1 + (((remainder - (max + 1)) % by) + by) % by;
                    var sql = $"ALTER SEQUENCE {name} INCREMENT BY {by} START WITH {start} RESTART WITH {start}";
                    if (!dryRun)
                    {
                        await using var cmd = new NpgsqlCommand(sql, conns[writers[i]]);
                        await cmd.ExecuteNonQueryAsync(ct);
                    }
                    actions.Add($"node {writers[i]}: {sql}{(dryRun ? " (dry run)" : "")}");
                }
            }
            return actions;
        }
        finally
        {
            foreach (var c in conns.Values) await c.DisposeAsync();
        }
    }

    /// <summary>The highest value the sequence handed out on the node, or that its column holds (rows copied from elsewhere).</summary>
    private static async Task<long> HighestUsedAsync(NpgsqlConnection conn, string sequence, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT coalesce(last_value, 0) FROM pg_sequences WHERE format('%I.%I', schemaname, sequencename) = $1", conn);
        cmd.Parameters.AddWithValue(sequence);
        var last = await cmd.ExecuteScalarAsync(ct) as long? ?? 0;
        await using var col = new NpgsqlCommand("""
            SELECT format('SELECT max(%I)::bigint FROM %s', a.attname, d.refobjid::regclass)
              FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = $1::regclass AND d.deptype IN ('a', 'i') LIMIT 1
            """, conn);
        col.Parameters.AddWithValue(sequence);
        if (await col.ExecuteScalarAsync(ct) is string maxSql)
        {
            await using var max = new NpgsqlCommand(maxSql, conn);
            if (await max.ExecuteScalarAsync(ct) is long m && m > last) last = m;
        }
        return last;
    }
}
