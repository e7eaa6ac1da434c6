using Microsoft.Extensions.Logging;
using Navette.Apply;
using Navette.Capture;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Conflicts;

/// <summary>
/// Sends again the versions this node kept in a conflict (<c>navette.rebroadcast</c>), each as a plain local
/// transaction that the node's outgoing subscriptions carry to every peer, so the node whose change lost ends with
/// the winning row too. A queued row that changed since is skipped: its newer version travels on its own. Several
/// workers of one node may drain the queue at once (rows are taken with SKIP LOCKED).
/// </summary>
internal sealed class Rebroadcaster(string targetConnectionString, string subscription, ILogger log)
{
    private const int PerTransaction = 100;
    private readonly Dictionary<(string, string), TargetTable?> _tables = new();

    public async Task<int> DrainAsync(CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(targetConnectionString)
        {
            ApplicationName = Sql.ApplicationName(subscription) + "_resend",
            Options = ChangeStream.SessionOptions,
            Pooling = false,
        }.ConnectionString);
        await conn.OpenAsync(ct);
        await using (var role = new NpgsqlCommand("SET session_replication_role = replica", conn))
            await role.ExecuteNonQueryAsync(ct);
        var sent = 0;
        while (true)
        {
            await using var tx = await conn.BeginTransactionAsync(ct);
            var queued = new List<Queued>();
            await using (var cmd = new NpgsqlCommand(
                "SELECT id, schema_name, table_name, key_columns, key_values, row_xmin::text, columns, row_values FROM navette.rebroadcast ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED", conn, tx))
            {
                cmd.Parameters.AddWithValue(PerTransaction);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                    queued.Add(new Queued(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetFieldValue<string?[]>(3), r.GetFieldValue<string?[]>(4),
                        r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetFieldValue<string?[]>(6), r.IsDBNull(7) ? null : r.GetFieldValue<string?[]>(7)));
            }
            if (queued.Count == 0) return sent;
            foreach (var q in queued)
            {
                if (!_tables.TryGetValue((q.Schema, q.Table), out var target))
                    _tables[(q.Schema, q.Table)] = target = await TargetTable.LoadAsync(conn, tx, q.Schema, q.Table, ct);
                if (target is null) continue;
                sent += q.RowXmin is not null ? await ResendRowAsync(conn, tx, target, q, ct) : await ResendDeleteAsync(conn, tx, target, q, ct);
            }
            await using (var done = new NpgsqlCommand("DELETE FROM navette.rebroadcast WHERE id = ANY($1)", conn, tx))
            {
                done.Parameters.AddWithValue(queued.Select(q => q.Id).ToArray());
                await done.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
        }
    }

    private sealed record Queued(long Id, string Schema, string Table, string?[] KeyColumns, string?[] KeyValues, string? RowXmin, string?[]? Columns, string?[]? Values);

    /// <summary>Rewrites every column of the row from its own text form, so that each value (TOASTed ones too) is sent in full.</summary>
    private static async Task<int> ResendRowAsync(NpgsqlConnection conn, NpgsqlTransaction tx, TargetTable target, Queued q, CancellationToken ct)
    {
        var sets = target.Columns.Where(c => !c.Value.IdentityAlways)
            .Select(c => $"{Sql.Ident(c.Key)} = {c.Value.OutputFunction}(t.{Sql.Ident(c.Key)})::text::{c.Value.CastType}");
        var (where, parameters) = KeyWhere(target, q, "t.");
        parameters.Add(new NpgsqlParameter { Value = q.RowXmin!, NpgsqlDbType = NpgsqlDbType.Text });
        await using var cmd = new NpgsqlCommand(
            $"UPDATE {target.OnlyName} AS t SET {string.Join(", ", sets)} WHERE {where} AND t.xmin = ${parameters.Count}::text::xid", conn, tx);
        cmd.Parameters.AddRange(parameters.ToArray());
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// A delete this node kept against a row another node wrote: the row is inserted then deleted again, which carries
    /// the delete to the peers that hold the row. Skipped when the key was written again here since.
    /// </summary>
    private async Task<int> ResendDeleteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, TargetTable target, Queued q, CancellationToken ct)
    {
        var (where, parameters) = KeyWhere(target, q, "");
        var columns = new List<string>();
        var values = new List<string>();
        for (var i = 0; i < q.Columns!.Length; i++)
        {
            if (q.Columns[i] is not { } name || !target.Columns.TryGetValue(name, out var column)) continue;
            parameters.Add(new NpgsqlParameter { Value = (object?)q.Values![i] ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            columns.Add(Sql.Ident(name));
            values.Add($"${parameters.Count}::text::{column.CastType}");
        }
        var keyArray = string.Join(", ", q.KeyColumns.Select((k, i) => $"${i + 1}::text::{target.Columns[k!].CastType}"));
        parameters.Add(new NpgsqlParameter { Value = target.QualifiedName, NpgsqlDbType = NpgsqlDbType.Text });
        var regclass = $"${parameters.Count}::text::pg_catalog.regclass";
        await using (var insert = new NpgsqlCommand(
            $"INSERT INTO {target.QualifiedName} ({string.Join(", ", columns)}){(target.HasIdentityAlways ? " OVERRIDING SYSTEM VALUE" : "")} " +
            $"SELECT {string.Join(", ", values)} WHERE NOT EXISTS (SELECT 1 FROM {target.OnlyName} WHERE {where}) " +
            $"AND EXISTS (SELECT 1 FROM navette.tombstone WHERE table_oid = {regclass} AND key = pg_catalog.jsonb_build_array({keyArray}))", conn, tx))
        {
            insert.Parameters.AddRange(parameters.Select(p => p.Clone()).ToArray());
            if (await insert.ExecuteNonQueryAsync(ct) == 0) return 0;
        }
        var keyCount = q.KeyColumns.Length;
        await using (var delete = new NpgsqlCommand($"DELETE FROM {target.OnlyName} WHERE {where}", conn, tx))
        {
            delete.Parameters.AddRange(parameters.Take(keyCount).Select(p => p.Clone()).ToArray());
            await delete.ExecuteNonQueryAsync(ct);
        }
        await using (var tombstone = new NpgsqlCommand(
            $"INSERT INTO navette.tombstone (table_oid, key) VALUES (${keyCount + 1}::text::pg_catalog.regclass, pg_catalog.jsonb_build_array({keyArray})) " +
            "ON CONFLICT (table_oid, key) DO UPDATE SET deleted_at = now()", conn, tx))
        {
            tombstone.Parameters.AddRange(parameters.Take(keyCount).Append(parameters[^1]).Select(p => p.Clone()).ToArray());
            await tombstone.ExecuteNonQueryAsync(ct);
        }
        log.LogDebug("subscription {Subscription}: sent the delete of {Table} key {Key} again", subscription, target.QualifiedName, string.Join(", ", q.KeyValues));
        return 1;
    }

    /// <summary>key1 = $1::type AND ...: the key parameters come first, in key order.</summary>
    private static (string Where, List<NpgsqlParameter> Parameters) KeyWhere(TargetTable target, Queued q, string alias)
    {
        var parameters = new List<NpgsqlParameter>();
        var parts = new List<string>();
        for (var i = 0; i < q.KeyColumns.Length; i++)
        {
            var column = target.Columns[q.KeyColumns[i]!];
            parameters.Add(new NpgsqlParameter { Value = (object?)q.KeyValues[i] ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            parts.Add($"{alias}{Sql.Ident(q.KeyColumns[i]!)} {column.EqualityOperator ?? "="} ${i + 1}::text::{column.CastType}");
        }
        return (string.Join(" AND ", parts), parameters);
    }

    /// <summary>Forgets deletes older than <paramref name="retention"/>: past that, a change to a deleted row is taken as new.</summary>
    public static async Task<int> ForgetOldTombstonesAsync(NpgsqlConnection conn, TimeSpan retention, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("DELETE FROM navette.tombstone WHERE deleted_at < now() - $1", conn);
        cmd.Parameters.AddWithValue(retention);
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
