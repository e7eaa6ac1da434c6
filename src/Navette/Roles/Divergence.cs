using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Navette.Capture;
using Navette.Config;
using Navette.Markers;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Roles;

/// <summary>
/// The transactions a lost origin committed after the point its new origin had reached: read from the lost origin's own
/// slot for the new origin (kept there since the failover), from the position recorded at the failover to the end of its
/// WAL. Each is a whole transaction with its row images, exactly as it would have been replicated.
/// </summary>
internal static class Divergence
{
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(120);

    /// <returns>The transactions, or null when the slot is gone (then only the rows found different can be reported).</returns>
    public static async Task<List<SourceTransaction>?> ReadAsync(NodeConfig node, NpgsqlConnection conn, FencedNode fence, ILogger log, CancellationToken ct)
    {
        var slot = Sql.SlotName(fence.LostSubscription);
        if (await RoleConnections.SlotActiveAsync(conn, slot, ct) is not { } active)
        {
            log.LogWarning("slot {Slot} is missing on {Node}: its transactions after {Lsn} cannot be read one by one; only the rows found different are reported", slot, node.Name, fence.DivergenceLsn);
            return null;
        }
        if (active)
            throw new NavetteException($"slot {slot} on {node.Name} is being read (an old navette run?); stop it, then rejoin");
        NpgsqlLogSequenceNumber end;
        await using (var cmd = new NpgsqlCommand("SELECT pg_current_wal_flush_lsn()::text", conn))
            end = NpgsqlLogSequenceNumber.Parse((string)(await cmd.ExecuteScalarAsync(ct))!);

        var publications = fence.Sets.Select(Sql.PublicationName).ToList();
        await using var stream = await ChangeStream.OpenAsync(node.ToNpgsqlConnectionString(), fence.LostSubscription, publications, forward: false, log, ct);
        var channel = Channel.CreateUnbounded<SourceTransaction>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = Task.Run(() => stream.RunAsync(fence.DivergenceLsn, channel.Writer, stop.Token), CancellationToken.None);
        var result = new List<SourceTransaction>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (true)
            {
                var caughtUp = stream.BetweenTransactions && stream.LastReceived >= end;
                while (channel.Reader.TryRead(out var tx))
                    if (Keep(tx)) result.Add(tx);
                if (caughtUp) break;
                if (reader.IsCompleted)
                {
                    await reader;
                    throw new NavetteException($"{node.Name} ended the stream of slot {slot} before {end}");
                }
                if (clock.Elapsed > ReadTimeout)
                    throw new NavetteException($"reading slot {slot} on {node.Name} did not reach {end} within {ReadTimeout.TotalSeconds:F0} s (at {stream.LastReceived})");
                await Task.Delay(50, ct);
            }
        }
        finally
        {
            await stop.CancelAsync();
            try { await reader; }
            catch (Exception e) when (e is OperationCanceledException || stop.IsCancellationRequested) { }
        }
        log.LogInformation("{Node}: {Count} transaction(s) committed after {Lsn} that {Origin} never received", node.Name, result.Count, fence.DivergenceLsn, fence.NewOrigin);
        return result;
    }

    /// <summary>Row changes only: navette's own markers (fences, compare requests) and replicated transactions are not the node's writes.</summary>
    private static bool Keep(SourceTransaction tx)
    {
        tx.Changes.RemoveAll(c => c.Relation.Schema == MarkerTables.Schema);
        return tx.Changes.Count > 0 && tx.OriginName is null;
    }

    /// <summary>The transactions as SQL a person can read and, if wanted, run on the new origin.</summary>
    public static string Render(string node, FencedNode fence, IReadOnlyList<SourceTransaction> transactions)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"-- navette rejoin {node}: {transactions.Count} transaction(s) {node} committed after {fence.DivergenceLsn},\n");
        sb.Append(CultureInfo.InvariantCulture, $"-- the position {fence.NewOrigin} had applied when it became the origin ({fence.FencedAt:yyyy-MM-dd HH:mm:ss} UTC). They never reached\n");
        sb.Append(CultureInfo.InvariantCulture, $"-- {fence.NewOrigin} and were removed from {node} when it was made identical to it. Review before running any on {fence.NewOrigin}.\n");
        foreach (var tx in transactions)
        {
            sb.Append('\n').Append(CultureInfo.InvariantCulture, $"-- transaction {tx.Xid} committed on {node} at {tx.CommitTime:yyyy-MM-dd HH:mm:ss.ffffff} UTC (LSN {tx.CommitLsn})\n");
            sb.Append("BEGIN;\n");
            foreach (var c in tx.Changes)
                sb.Append(Statement(c)).Append('\n');
            sb.Append("COMMIT;\n");
        }
        return sb.ToString();
    }

    public static string Statement(RowChange c)
    {
        var rel = c.Relation;
        switch (c.Kind)
        {
            case ChangeKind.Insert:
            {
                var cols = Enumerable.Range(0, rel.Columns.Length).Where(i => !c.New!.IsUnchanged(i)).ToList();
                return $"INSERT INTO {rel.QualifiedName} ({string.Join(", ", cols.Select(i => Sql.Ident(rel.Columns[i])))}) VALUES ({string.Join(", ", cols.Select(i => Value(c.New!.Values[i])))});";
            }
            case ChangeKind.Update:
            {
                var set = Enumerable.Range(0, rel.Columns.Length).Where(i => !c.New!.IsUnchanged(i))
                    .Select(i => $"{Sql.Ident(rel.Columns[i])} = {Value(c.New!.Values[i])}");
                return $"UPDATE {rel.QualifiedName} SET {string.Join(", ", set)} WHERE {Where(rel, c.Old ?? c.New!, c.Old is null)};";
            }
            case ChangeKind.Delete:
                return $"DELETE FROM {rel.QualifiedName} WHERE {Where(rel, c.Old!, fromNewRow: false)};";
            default:
                return $"TRUNCATE {string.Join(", ", (c.TruncatedRelations ?? [rel]).Select(r => r.QualifiedName))}" +
                       (c.TruncateRestartIdentity ? " RESTART IDENTITY" : "") + (c.TruncateCascade ? " CASCADE" : "") + ";";
        }
    }

    /// <summary>The key columns' indexes in the row image (every column for REPLICA IDENTITY FULL).</summary>
    public static int[] KeyIndexes(SourceRelation rel) => rel.KeyColumns.Length > 0 ? rel.KeyColumns : Enumerable.Range(0, rel.Columns.Length).ToArray();

    private static string Where(SourceRelation rel, RowImage image, bool fromNewRow)
    {
        _ = fromNewRow;
        return string.Join(" AND ", KeyIndexes(rel).Where(i => !image.IsUnchanged(i)).Select(i =>
            image.Values[i] is { } v ? $"{Sql.Ident(rel.Columns[i])} = {Sql.Literal(v)}" : $"{Sql.Ident(rel.Columns[i])} IS NULL"));
    }

    private static string Value(string? v) => v is null ? "NULL" : Sql.Literal(v);

    /// <summary>A row image as a JSON object of text values (what conflict_log holds), key columns only when asked.</summary>
    public static string Json(SourceRelation rel, RowImage? image, bool keyOnly)
    {
        if (image is null) return "null";
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var i in keyOnly ? KeyIndexes(rel) : Enumerable.Range(0, rel.Columns.Length).ToArray())
            if (!image.IsUnchanged(i)) values[rel.Columns[i]] = image.Values[i];
        return JsonSerializer.Serialize(values);
    }
}
