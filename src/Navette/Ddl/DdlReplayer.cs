using Microsoft.Extensions.Logging;
using Navette.Apply;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Ddl;

/// <summary>
/// Replays a schema change where its marker (<c>navette.ddl</c>) arrives in the stream, inside the apply transaction:
/// the rows before it were applied under the old schema, the rows after it are applied under the new one. A change that
/// fails stops the subscription on that transaction, with the command and the error; it is tried again when the
/// worker restarts (once the target is fixed), or passed over after <c>navette skip-ddl</c>.
/// </summary>
internal sealed class DdlReplayer(string subscription, string originNode, IReadOnlyList<SetConfig> sets, Sync.TableJoiner? joiner, ILogger log)
{
    public async Task<MarkerOutcome> ReplayAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyDictionary<string, string?> row, CancellationToken ct)
    {
        var change = await DdlChange.ParseAsync(conn, tx, row, ct);
        if (change.Kind == "join")
        {
            // Tables added to a set's publication by navette apply: copied here, then streamed.
            if (joiner is null || !sets.Any(s => s.Name == change.SetName)) return MarkerOutcome.Continue;
            await joiner.JoinAsync(conn, tx, Sql.PublicationName(change.SetName!),
                change.Schemas.Zip(change.Names, (s, n) => (s!, n!)).ToList(), ct);
            return MarkerOutcome.SchemaChanged;
        }
        var execute = change.Kind == "execute";
        if (!Concerns(change))
            return MarkerOutcome.Continue;
        if (await SkippedAsync(conn, tx, change.Id, ct))
        {
            log.LogWarning("subscription {Subscription}: schema change {Id} from {Origin} passed over (navette skip-ddl): {Command}",
                subscription, change.Id, originNode, DdlChange.Abbreviate(change.Command));
            return execute ? MarkerOutcome.SchemaChangedSkipRest : MarkerOutcome.Continue;
        }

        string sessionPath;
        await using (var setup = new NpgsqlCommand(
                         "SELECT current_setting('search_path'), set_config('search_path', $1, true), set_config('navette.ddl_replaying', 'on', true)", conn, tx))
        {
            setup.Parameters.AddWithValue(change.SearchPath);
            sessionPath = (string)(await setup.ExecuteScalarAsync(ct))!;
        }
        try
        {
            await using var cmd = new NpgsqlCommand(change.Command, conn, tx);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        catch (PostgresException e)
        {
            throw new NavetteException(
                $"subscription {subscription}: schema change {change.Id} from node {originNode} failed on the target: {e.MessageText}" +
                (e.Detail is { Length: > 0 } d ? $" ({d})" : "") + $"\n  command: {DdlChange.Abbreviate(change.Command, 2000)}\n" +
                "  nothing after it is applied; fix the target so the command can run (the subscription retries it by itself), " +
                $"or pass over it with: navette skip-ddl --subscription {subscription} --id {change.Id}");
        }
        // Written here too, tagged with this subscription's origin: a cascade (forward: true) carries it on, a mesh does not.
        await using (var record = new NpgsqlCommand("""
                         INSERT INTO navette.ddl (kind, set_name, command, command_tags, object_types, object_schemas, object_names, search_path, role_name)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         """, conn, tx))
        {
            record.Parameters.Add(new NpgsqlParameter { Value = change.Kind });
            record.Parameters.Add(new NpgsqlParameter { Value = (object?)change.SetName ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            record.Parameters.Add(new NpgsqlParameter { Value = change.Command });
            foreach (var a in new[] { change.Tags, change.Types, change.Schemas, change.Names })
                record.Parameters.Add(new NpgsqlParameter { Value = a, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            record.Parameters.Add(new NpgsqlParameter { Value = change.SearchPath });
            record.Parameters.Add(new NpgsqlParameter { Value = change.Role });
            await record.ExecuteNonQueryAsync(ct);
        }
        await using (var restore = new NpgsqlCommand("SELECT set_config('search_path', $1, true), set_config('navette.ddl_replaying', 'off', true)", conn, tx))
        {
            restore.Parameters.AddWithValue(sessionPath);
            await restore.ExecuteNonQueryAsync(ct);
        }
        log.LogInformation("subscription {Subscription}: schema change {Id} from {Origin} replayed: {Command}",
            subscription, change.Id, originNode, DdlChange.Abbreviate(change.Command));
        return execute ? MarkerOutcome.SchemaChangedSkipRest : MarkerOutcome.SchemaChanged;
    }

    /// <summary>
    /// A script replays where the subscription carries its set (and the set takes schema changes); a captured command
    /// where one of the subscription's <c>ddl: auto</c> sets covers a table it touched, or the schema of another object.
    /// </summary>
    private bool Concerns(DdlChange change)
    {
        if (change.Kind == "execute")
            return sets.Any(s => s.Name == change.SetName && s.Ddl != DdlMode.None);
        var auto = sets.Where(s => s.Ddl == DdlMode.Auto).ToList();
        for (var i = 0; i < change.Names.Length; i++)
        {
            var schema = change.Schemas[i]!;
            var covered = change.Types[i] is "table" or "view" or "materialized view" or "foreign table" or "index" or "sequence"
                ? auto.Any(s => s.Matches(schema, change.Names[i]!))
                : auto.Any(s => s.Tables.Any(t => t.MatchesSchema(schema)));
            if (covered) return true;
        }
        return false;
    }

    private async Task<bool> SkippedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM navette.ddl_skip WHERE subscription = $1 AND ddl_id = $2)", conn, tx);
        cmd.Parameters.AddWithValue(subscription);
        cmd.Parameters.AddWithValue(id);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
