using Microsoft.Extensions.Logging;
using Navette.Apply;
using Navette.Capture;
using Navette.Config;
using Navette.Daemon;
using Navette.Setup;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using NpgsqlTypes;

namespace Navette.Consistency;

/// <summary>What a resync did, per table.</summary>
internal sealed record ResyncReport(string Subscription, NpgsqlLogSequenceNumber StartsAt, List<(TableComparison Compared, int Written, int Removed)> Tables);

/// <summary>
/// <c>navette resync SUBSCRIPTION</c>: brings a replica level with its origin after its slot was lost (away longer
/// than the origin kept WAL, or dropped by the WAL retention guard), moving only the rows that differ. A new slot is
/// created with an exported snapshot; each table is compared between that snapshot and the (stopped) target, the
/// differing rows are written from the snapshot, and the subscription's progress is set to the slot's consistent point:
/// what the snapshot holds is on the target, the stream brings the rest, and no transaction is applied twice.
/// </summary>
internal sealed class Resync(NavetteConfig config, CompareOptions options, ILogger log)
{
    private const int RowsPerWrite = 1000;

    public async Task<ResyncReport> RunAsync(string subscription, Action<string>? progress, CancellationToken ct)
    {
        if (!config.Subscriptions.TryGetValue(subscription, out var sub))
            throw new NavetteException($"no subscription named {subscription} in {config.SourcePath}; defined: {string.Join(", ", config.Subscriptions.Keys)}");
        var plan = ReplicationDaemon.PlanFor(config, sub);
        var origin = Sql.OriginName(sub.Name);
        var slot = Sql.SlotName(sub.Name);

        await using var target = await RangeProbe.OpenAsync(plan.TargetConnectionString, ct);
        if (await NodeInspector.OriginInUseAsync(target, origin, ct) is { } holder)
            throw new NavetteException($"subscription {sub.Name} is being applied on {sub.To} ({holder}); stop navette run (or the worker of {sub.Name}) before resync");
        await using (var source = await RangeProbe.OpenAsync(plan.SourceConnectionString, ct))
        await using (var cmd = new NpgsqlCommand("SELECT active FROM pg_replication_slots WHERE slot_name = $1", source))
        {
            cmd.Parameters.AddWithValue(slot);
            var active = await cmd.ExecuteScalarAsync(ct);
            if (active is true)
                throw new NavetteException($"slot {slot} on {sub.From} is being read; stop navette run before resync");
            if (active is false)
            {
                await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", source);
                drop.Parameters.AddWithValue(slot);
                await drop.ExecuteNonQueryAsync(ct);
                log.LogInformation("resync {Subscription}: dropped the old slot {Slot} on {Node}", sub.Name, slot, sub.From);
            }
        }

        var csb = new NpgsqlConnectionStringBuilder(plan.SourceConnectionString) { ApplicationName = Sql.ApplicationName(sub.Name) + "_resync", Options = ChangeStream.SessionOptions };
        await using var repl = new LogicalReplicationConnection(csb.ConnectionString);
        await repl.Open(ct);
        var created = await repl.CreatePgOutputReplicationSlot(slot, temporarySlot: false, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.Export, cancellationToken: ct);
        var snapshot = created.SnapshotName ?? throw new InvalidOperationException("the origin did not export a snapshot for the new slot");
        log.LogInformation("resync {Subscription}: slot {Slot} created on {Node} at {Lsn}; comparing under its snapshot", sub.Name, slot, sub.From, created.ConsistentPoint);

        // The replication connection stays open and idle until every read of the snapshot is done.
        var subjects = await new CompareRunner(config, options, log).SubjectsAsync(new CompareSelection(Subscription: sub.Name), ct);
        var tables = new List<(TableComparison, int, int)>();
        foreach (var subject in subjects)
        {
            var compared = await new RangeComparer(subject, options, c => SnapshotProbe.OpenAsync(subject, options, snapshot, c), log).CompareAsync(progress, ct);
            if (compared.Error is not null)
                throw new NavetteException($"resync {sub.Name}: comparing {subject.Name} failed: {compared.Error}");
            var (written, removed) = compared.Differences.Count == 0 ? (0, 0) : await WriteAsync(subject, compared, snapshot, ct);
            progress?.Invoke($"{subject.Name}: {compared.OriginRows} rows, {compared.Differences.Count} differed; {written} written, {removed} removed");
            tables.Add((compared, written, removed));
        }

        await using (var tx = await target.BeginTransactionAsync(ct))
        {
            await using (var advance = new NpgsqlCommand("SELECT pg_replication_origin_advance($1, $2::text::pg_lsn)", target, tx))
            {
                advance.Parameters.AddWithValue(origin);
                advance.Parameters.AddWithValue(created.ConsistentPoint.ToString());
                await advance.ExecuteNonQueryAsync(ct);
            }
            await using (var state = new NpgsqlCommand(
                "UPDATE navette.subscription SET state = 'streaming', error = NULL, error_at = NULL, consistent_lsn = $2::text::pg_lsn, updated_at = now() WHERE name = $1", target, tx))
            {
                state.Parameters.AddWithValue(sub.Name);
                state.Parameters.AddWithValue(created.ConsistentPoint.ToString());
                if (await state.ExecuteNonQueryAsync(ct) == 0)
                    throw new NavetteException($"subscription {sub.Name} is not registered on {sub.To}; run navette apply first");
            }
            await tx.CommitAsync(ct);
        }
        log.LogInformation("resync {Subscription}: level with {Node} at {Lsn}; navette run streams from there", sub.Name, sub.From, created.ConsistentPoint);
        return new ResyncReport(sub.Name, created.ConsistentPoint, tables);
    }

    /// <summary>Writes the differing rows from the snapshot on the target, under the subscription's origin (like applied rows).</summary>
    private async Task<(int Written, int Removed)> WriteAsync(CompareSubject subject, TableComparison compared, string snapshot, CancellationToken ct)
    {
        await using var origin = await RangeProbe.OpenAsync(subject.OriginConnectionString, ct);
        await using var snap = await origin.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        await using (var cmd = new NpgsqlCommand($"SET TRANSACTION READ ONLY; SET TRANSACTION SNAPSHOT {Sql.Literal(snapshot)}", origin, snap))
            await cmd.ExecuteNonQueryAsync(ct);
        var originTable = await TargetTable.LoadAsync(origin, snap, subject.Schema, subject.Table, ct)
                          ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.From}");
        await using var target = await RangeProbe.OpenAsync(subject.TargetConnectionString, ct);
        await using (var role = new NpgsqlCommand("SET session_replication_role = replica", target))
            await role.ExecuteNonQueryAsync(ct);
        await using (var setup = new NpgsqlCommand("SELECT pg_replication_origin_session_setup($1)", target))
        {
            setup.Parameters.AddWithValue(Sql.OriginName(subject.Subscription));
            await setup.ExecuteNonQueryAsync(ct);
        }
        var targetTable = await TargetTable.LoadAsync(target, null, subject.Schema, subject.Table, ct)
                          ?? throw new NavetteException($"table {subject.Name} does not exist on node {subject.To}; create it (or set copy_schema: true) and resync again");
        var written = 0;
        var removed = 0;
        foreach (var keys in compared.Differences.Select(d => d.Key).Chunk(RowsPerWrite))
        {
            var rows = await SnapshotProbe.ReadRowsAsync(origin, snap, originTable, subject, keys, ct);
            await using var tx = await target.BeginTransactionAsync(ct);
            removed += await RowSetWriter.DeleteAsync(target, tx, targetTable, subject.KeyColumns, rows.Where(x => x.Row is null).Select(x => x.Key).ToList(), ct);
            await RowSetWriter.DeleteAsync(target, tx, targetTable, subject.KeyColumns, rows.Where(x => x.Row is not null).Select(x => x.Key).ToList(), ct);
            written += await RowSetWriter.InsertAsync(target, tx, targetTable, subject.Columns, rows.Where(x => x.Row is not null).Select(x => x.Row!).ToList(), ct);
            await tx.CommitAsync(ct);
        }
        return (written, removed);
    }
}
