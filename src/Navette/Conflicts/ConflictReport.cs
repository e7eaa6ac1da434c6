using System.Text.Json;
using Navette.Config;
using Npgsql;

namespace Navette.Conflicts;

/// <summary>One row of a node's <c>navette.conflict_log</c>, as <c>navette conflicts</c> shows it.</summary>
internal sealed record ConflictEntry(
    string Node, long Id, DateTime LoggedAt, string Subscription, string Type, string Table, JsonElement Key,
    JsonElement? Local, JsonElement? Remote, string? LocalOrigin, DateTime? LocalCommitTime,
    string RemoteOrigin, DateTime RemoteCommitTime, string RemoteCommitLsn, string Policy, string Outcome, string? Decision);

/// <summary>Reads the conflict logs of every node of a configuration, and records operators' decisions on aborted conflicts.</summary>
internal sealed class ConflictReport(NavetteConfig config)
{
    /// <param name="since">Only conflicts logged at or after this time.</param>
    /// <param name="table">Only this table (schema.table, as logged, quotes optional).</param>
    public async Task<(List<ConflictEntry> Entries, List<string> Unreachable)> ReadAsync(string? node, DateTime? since, string? table, int limit, CancellationToken ct)
    {
        var entries = new List<ConflictEntry>();
        var unreachable = new List<string>();
        foreach (var n in config.Nodes.Values.Where(n => node is null || n.Name == node))
        {
            try
            {
                await using var conn = new NpgsqlConnection(n.ToNpgsqlConnectionString());
                await conn.OpenAsync(ct);
                await using (var check = new NpgsqlCommand("SELECT to_regclass('navette.conflict_log') IS NOT NULL", conn))
                    if (!(bool)(await check.ExecuteScalarAsync(ct))!) continue;
                await using var cmd = new NpgsqlCommand("""
                    SELECT id, logged_at, subscription, conflict_type, table_name, key::text, local_tuple::text, remote_tuple::text,
                           local_origin, local_commit_time, remote_origin, remote_commit_time, remote_commit_lsn::text, policy, outcome, decision
                      FROM navette.conflict_log
                     WHERE ($1::timestamptz IS NULL OR logged_at >= $1)
                       AND ($2::text IS NULL OR table_name = $2 OR replace(table_name, '"', '') = $2)
                     ORDER BY id DESC LIMIT $3
                    """, conn);
                cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)since ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)table ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
                cmd.Parameters.AddWithValue(limit);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    entries.Add(new ConflictEntry(n.Name, r.GetInt64(0), r.GetDateTime(1), r.GetString(2), r.GetString(3), r.GetString(4),
                        Json(r.GetString(5))!.Value, r.IsDBNull(6) ? null : Json(r.GetString(6)), r.IsDBNull(7) ? null : Json(r.GetString(7)),
                        r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetDateTime(9), r.GetString(10), r.GetDateTime(11),
                        r.GetString(12), r.GetString(13), r.GetString(14), r.IsDBNull(15) ? null : r.GetString(15)));
                }
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
            {
                unreachable.Add($"node {n.Name} ({n.RedactedConnInfo}): {ConnInfo.ScrubSecrets(Daemon.SubscriptionWorker.Describe(e), n.ConnInfo)}");
            }
        }
        return (entries.OrderByDescending(e => e.LoggedAt).Take(limit).ToList(), unreachable);
    }

    private static JsonElement? Json(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    /// <summary>
    /// Records how aborted conflicts are to be settled: one (<paramref name="id"/> on <paramref name="node"/>) or every
    /// one still waiting on a subscription. The stopped subscription applies the decision at its next attempt.
    /// Returns how many conflicts were decided.
    /// </summary>
    public async Task<int> ResolveAsync(string? node, long? id, string? subscription, string keep, CancellationToken ct)
    {
        if (keep is not ("incoming" or "local" or "skip"))
            throw new NavetteException($"--keep must be incoming, local or skip, not '{keep}'");
        if (id is not null && node is null)
            throw new NavetteException("--id needs --node: conflict ids are numbered per node (navette conflicts shows both)");
        if (id is null && subscription is null)
            throw new NavetteException("say which conflict to decide: --node N --id ID, or --subscription S for every conflict it stopped on");
        var targets = subscription is not null && config.Subscriptions.TryGetValue(subscription, out var sub)
            ? [sub.To]
            : node is not null ? [node] : config.Nodes.Keys.ToList();
        if (node is not null && !config.Nodes.ContainsKey(node))
            throw new NavetteException($"no node named {node} in {config.SourcePath}; defined: {string.Join(", ", config.Nodes.Keys)}");
        var decided = 0;
        foreach (var target in targets)
        {
            await using var conn = new NpgsqlConnection(config.Nodes[target].ToNpgsqlConnectionString());
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("""
                UPDATE navette.conflict_log SET decision = $1
                 WHERE outcome = 'aborted' AND ($2::bigint IS NULL OR id = $2) AND ($3::text IS NULL OR subscription = $3)
                """, conn);
            cmd.Parameters.AddWithValue(keep);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)id ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)subscription ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            decided += await cmd.ExecuteNonQueryAsync(ct);
        }
        return decided;
    }
}
