using Npgsql;

namespace Navette.Conflicts;

/// <summary>
/// Tells which node wrote a row from the replication origin PostgreSQL recorded with its transaction: 0 is this node,
/// <c>navette_&lt;subscription&gt;</c> and that subscription's copy origins are the subscription's origin node.
/// </summary>
internal sealed class OriginMap(string localNode, IReadOnlyDictionary<string, string> subscriptionOrigins)
{
    private readonly Dictionary<uint, string> _nodes = new();
    /// <summary>Origins seen on rows but gone from pg_replication_origin (dropped, like a finished copy's): not reloaded for again.</summary>
    private readonly HashSet<uint> _dropped = new();

    public string LocalNode => localNode;

    public async Task LoadAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT roident::int8, roname FROM pg_catalog.pg_replication_origin", conn, tx);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        _nodes.Clear();
        while (await r.ReadAsync(ct))
            _nodes[(uint)r.GetInt64(0)] = NodeOfOrigin(r.GetString(1));
    }

    /// <summary>False for an origin neither listed nor known to be dropped: the list should be read again.</summary>
    public bool Knows(uint roident) => roident == 0 || _nodes.ContainsKey(roident) || _dropped.Contains(roident);

    /// <summary>After a reload, origins still missing are dropped ones.</summary>
    public void MarkDropped(IEnumerable<uint> roidents)
    {
        foreach (var id in roidents.Where(id => id != 0 && !_nodes.ContainsKey(id))) _dropped.Add(id);
    }

    /// <summary>The node, or null when the origin no longer exists (its rows' writer cannot be told).</summary>
    public string? NodeOf(uint roident) =>
        roident == 0 ? localNode : _nodes.TryGetValue(roident, out var node) ? node : null;

    /// <summary>The origin ids whose rows came from <paramref name="node"/>.</summary>
    public uint[] IdsOf(string node) => _nodes.Where(kv => kv.Value == node).Select(kv => kv.Key).ToArray();

    private string NodeOfOrigin(string origin)
    {
        if (origin.StartsWith("navette_", StringComparison.Ordinal) && subscriptionOrigins.TryGetValue(origin["navette_".Length..], out var from))
            return from;
        var parts = origin.Split(':');
        if (parts is ["navette-copy", var sub, _] && subscriptionOrigins.TryGetValue(sub, out var copiedFrom))
            return copiedFrom;
        return origin;
    }
}
