using Microsoft.Extensions.Logging;
using Navette.Capture;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;

namespace Navette.Sync;

/// <summary>
/// Copies the tables that joined a running subscription's publication, where the join marker arrives in the stream.
/// The stream is paused there (the marker is applied alone, inside the apply transaction): a temporary slot on the
/// origin exports a snapshot at a position at or after the marker; each table is copied under it into the apply
/// transaction, replacing what the target held; and the stream's changes to those tables up to that position (already
/// in the copy) are passed over (<see cref="JoinedTables"/>). Nothing is missed and nothing applied twice.
/// </summary>
internal sealed class TableJoiner(string subscription, string sourceConnectionString, JoinedTables joined, ILogger log)
{
    public async Task JoinAsync(NpgsqlConnection target, NpgsqlTransaction tx, string publication, IReadOnlyList<(string Schema, string Table)> tables,
        CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        var csb = new NpgsqlConnectionStringBuilder(sourceConnectionString) { ApplicationName = Sql.ApplicationName(subscription) + "_join", Options = ChangeStream.SessionOptions };
        await using var repl = new LogicalReplicationConnection(csb.ConnectionString);
        await repl.Open(ct);
        var slot = $"navette_join_{Guid.NewGuid():N}"[..40];
        var created = await repl.CreatePgOutputReplicationSlot(slot, temporarySlot: true, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.Export, cancellationToken: ct);
        var snapshot = created.SnapshotName ?? throw new InvalidOperationException("the origin did not export a snapshot for the join's slot");

        await using var source = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(sourceConnectionString)
            { ApplicationName = Sql.ApplicationName(subscription) + "_join", Options = ChangeStream.SessionOptions, Pooling = false, CommandTimeout = 0 }.ConnectionString);
        await source.OpenAsync(ct);
        await using var snap = await source.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
        await using (var set = new NpgsqlCommand($"SET TRANSACTION READ ONLY; SET TRANSACTION SNAPSHOT {Sql.Literal(snapshot)}", source, snap))
            await set.ExecuteNonQueryAsync(ct);
        // The snapshot is imported: the slot (and its replication connection) is no longer needed.
        await repl.DisposeAsync();

        var described = (await PublishedTables.ReadAsync(source, [publication], ct))
            .Where(t => tables.Contains((t.Schema, t.Name))).ToList();
        var buffer = new byte[64 * 1024];
        foreach (var table in described)
        {
            await using (var empty = new NpgsqlCommand($"DELETE FROM {table.QualifiedName}", target, tx))
                await empty.ExecuteNonQueryAsync(ct);
            var rows = await CopyAsync(source, target, table, buffer, ct);
            await joined.AddAsync(target, tx, subscription, table.Schema, table.Name, created.ConsistentPoint, rows, ct);
            log.LogInformation("subscription {Subscription}: table {Table} joined: {Rows} rows copied under a snapshot at {Lsn}; it streams from there",
                subscription, table.ReadableName, rows, created.ConsistentPoint);
        }
        await snap.CommitAsync(ct);
        log.LogInformation("subscription {Subscription}: {Count} table(s) joined in {Seconds:F1} s (the stream waited meanwhile)",
            subscription, described.Count, (DateTime.UtcNow - started).TotalSeconds);
    }

    private static async Task<long> CopyAsync(NpgsqlConnection source, NpgsqlConnection target, CopyTable table, byte[] buffer, CancellationToken ct)
    {
        long rows = 0;
        await CopyPipe.RunAsync(source, target, table, $"(SELECT {table.ColumnList} FROM {table.QualifiedName})", buffer, (r, _) => rows += r, ct);
        return rows;
    }
}
