using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Navette.Sync;

/// <summary>
/// Builds the target's indexes after the initial copy instead of maintaining them row by row during it, as a
/// restore of pg_dump does: one sort per index instead of millions of btree inserts.
/// <para>
/// The definitions are recorded in <c>navette.copy_deferred_index</c> in the transaction that drops the indexes,
/// and each is deleted in the transaction that rebuilds it, so a copy interrupted at any point rebuilds exactly
/// what is missing when it completes. Tables referenced by a foreign key (dropping their key would drop the
/// other table's constraint), partitioned tables and partitions, and tables whose replica identity is an index
/// keep their indexes.
/// </para>
/// </summary>
internal sealed class DeferredIndexes(string subscription, string targetConnectionString, ILogger log)
{
    private sealed record Deferred(string Table, string Name, string Drop, string Create);

    /// <summary>Drops the deferrable indexes of <paramref name="tables"/> (which must be empty) and records them.</summary>
    public async Task DeferAsync(NpgsqlConnection target, IReadOnlyList<CopyTable> tables, CancellationToken ct)
    {
        var found = new List<Deferred>();
        foreach (var t in tables.Where(t => !t.Partitioned))
            found.AddRange(await FindAsync(target, t, ct));
        if (found.Count == 0) return;

        await using var tx = await target.BeginTransactionAsync(ct);
        var deferred = new List<string>();
        foreach (var d in found)
        {
            // Something may depend on the index (a view grouping by the key, say): then it stays and is maintained.
            await tx.SaveAsync("drop_one", ct);
            try
            {
                await using var drop = new NpgsqlCommand(d.Drop, target, tx);
                await drop.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DependentObjectsStillExist)
            {
                await tx.RollbackAsync("drop_one", ct);
                log.LogInformation("subscription {Subscription}: keeping {Index} during the copy: {Error}", subscription, d.Name, e.MessageText);
                continue;
            }
            deferred.Add(d.Name);
            await using (var record = new NpgsqlCommand(
                "INSERT INTO navette.copy_deferred_index (subscription, table_name, name, definition) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", target, tx))
            {
                record.Parameters.AddWithValue(subscription);
                record.Parameters.AddWithValue(d.Table);
                record.Parameters.AddWithValue(d.Name);
                record.Parameters.AddWithValue(d.Create);
                await record.ExecuteNonQueryAsync(ct);
            }
        }
        await tx.CommitAsync(ct);
        if (deferred.Count > 0)
            log.LogInformation("subscription {Subscription}: {Count} index(es) of the target tables will be built after the copy: {Names}",
                subscription, deferred.Count, string.Join(", ", deferred));
    }

    /// <summary>Rebuilds every index recorded for this subscription, <paramref name="parallel"/> tables at a time.</summary>
    public async Task RebuildAsync(int parallel, CancellationToken ct)
    {
        List<(string Table, string Name, string Definition)> pending = new();
        await using (var conn = new NpgsqlConnection(targetConnectionString))
        {
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand(
                // Constraints (primary keys first) before plain indexes, as pg_dump orders them.
                "SELECT table_name, name, definition FROM navette.copy_deferred_index WHERE subscription = $1 ORDER BY table_name, definition NOT LIKE 'ALTER TABLE%PRIMARY KEY%', definition NOT LIKE 'ALTER TABLE%', name", conn);
            cmd.Parameters.AddWithValue(subscription);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) pending.Add((r.GetString(0), r.GetString(1), r.GetString(2)));
        }
        if (pending.Count == 0) return;
        var clock = Stopwatch.StartNew();
        using var gate = new SemaphoreSlim(Math.Max(1, parallel));
        await Task.WhenAll(pending.GroupBy(p => p.Table).Select(async group =>
        {
            await gate.WaitAsync(ct);
            try
            {
                await using var conn = new NpgsqlConnection(targetConnectionString);
                await conn.OpenAsync(ct);
                await using (var setup = new NpgsqlCommand("SET maintenance_work_mem = '256MB'", conn))
                    await setup.ExecuteNonQueryAsync(ct);
                foreach (var (table, name, definition) in group)
                {
                    await using var tx = await conn.BeginTransactionAsync(ct);
                    try
                    {
                        await using (var create = new NpgsqlCommand(definition, conn, tx))
                            await create.ExecuteNonQueryAsync(ct);
                    }
                    catch (PostgresException e)
                    {
                        throw new NavetteException(
                            $"subscription {subscription}: rebuilding {name} on {table} after the initial copy failed: {e.SqlState} {e.MessageText}" +
                            (e.Detail is { Length: > 0 } d ? $" ({d})" : "") + $"; statement: {definition}", e);
                    }
                    await using (var done = new NpgsqlCommand(
                        "DELETE FROM navette.copy_deferred_index WHERE subscription = $1 AND table_name = $2 AND name = $3", conn, tx))
                    {
                        done.Parameters.AddWithValue(subscription);
                        done.Parameters.AddWithValue(table);
                        done.Parameters.AddWithValue(name);
                        await done.ExecuteNonQueryAsync(ct);
                    }
                    await tx.CommitAsync(ct);
                }
            }
            finally
            {
                gate.Release();
            }
        }));
        log.LogInformation("subscription {Subscription}: {Count} index(es) built after the copy in {Seconds:F1} s", subscription, pending.Count, clock.Elapsed.TotalSeconds);
    }

    private static async Task<List<Deferred>> FindAsync(NpgsqlConnection target, CopyTable table, CancellationToken ct)
    {
        var result = new List<Deferred>();
        await using var cmd = new NpgsqlCommand("""
            WITH t AS (
                SELECT c.oid, c.relreplident, c.relispartition, c.relkind
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2)
            SELECT con.conname IS NOT NULL,
                   coalesce(con.conname, ic.relname),
                   CASE WHEN con.conname IS NOT NULL
                        THEN format('ALTER TABLE %s ADD CONSTRAINT %I %s', $3, con.conname, pg_get_constraintdef(con.oid))
                        ELSE pg_get_indexdef(i.indexrelid)
                             || CASE WHEN ic.reltablespace <> 0 THEN ' TABLESPACE ' || quote_ident(ts.spcname) ELSE '' END END,
                   CASE WHEN con.conname IS NOT NULL
                        THEN format('ALTER TABLE %s DROP CONSTRAINT %I', $3, con.conname)
                        ELSE format('DROP INDEX %I.%I', $1, ic.relname) END
              FROM t
              JOIN pg_index i ON i.indrelid = t.oid
              JOIN pg_class ic ON ic.oid = i.indexrelid
              LEFT JOIN pg_tablespace ts ON ts.oid = ic.reltablespace
              LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u', 'x')
             WHERE t.relkind = 'r' AND NOT t.relispartition AND t.relreplident <> 'i'
               AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = t.oid)
               AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = t.oid)
               AND i.indislive AND i.indisvalid
             ORDER BY 2
            """, target);
        cmd.Parameters.AddWithValue(table.Schema);
        cmd.Parameters.AddWithValue(table.Name);
        cmd.Parameters.AddWithValue(table.QualifiedName);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            result.Add(new Deferred(table.QualifiedName, r.GetString(1), r.GetString(3), r.GetString(2)));
        return result;
    }
}
