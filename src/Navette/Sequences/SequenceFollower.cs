using Microsoft.Extensions.Logging;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Sequences;

/// <summary>
/// Where a sequence marker arrives, raises the target's sequences of the subscription's sets to the origin's values:
/// a sequence a set's pattern matches, or one owned by (serial, identity) a table of the set. Never moves one back,
/// and leaves sets written on several nodes alone (each node has its own values: navette sequences partition).
/// </summary>
internal sealed class SequenceFollower(string subscription, IReadOnlyList<SetConfig> sets, ILogger log)
{
    private readonly List<SetConfig> _followed = sets.Where(s => !s.MultiMaster).ToList();

    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyDictionary<string, string?> row, CancellationToken ct)
    {
        if (_followed.Count == 0) return;
        var arrays = await Apply.MarkerApplier.ParseArraysAsync(conn, tx, ct,
            new[] { "schemas", "names", "last_values", "owner_schemas", "owner_tables" }.Select(c => row.GetValueOrDefault(c) ?? "{}").ToArray());
        var schemas = new List<string>();
        var names = new List<string>();
        var values = new List<long>();
        for (var i = 0; i < arrays[0]!.Length; i++)
        {
            var schema = arrays[0]![i]!;
            var name = arrays[1]![i]!;
            var ownerSchema = arrays[3]![i]!;
            var ownerTable = arrays[4]![i]!;
            if (!_followed.Any(s => s.Matches(schema, name) || (ownerTable.Length > 0 && s.Matches(ownerSchema, ownerTable)))) continue;
            schemas.Add(schema);
            names.Add(name);
            values.Add(long.Parse(arrays[2]![i]!, System.Globalization.CultureInfo.InvariantCulture));
        }
        if (schemas.Count == 0) return;
        await using var cmd = new NpgsqlCommand("""
            SELECT count(*) FILTER (WHERE navette.raise_sequence(to_regclass(format('%I.%I', u.s, u.n)), u.v))::int4
              FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(s, n, v)
             WHERE to_regclass(format('%I.%I', u.s, u.n)) IS NOT NULL
            """, conn, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = schemas.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = names.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = values.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        var raised = (int)(await cmd.ExecuteScalarAsync(ct))!;
        if (raised > 0)
            log.LogDebug("subscription {Subscription}: {Count} sequence(s) raised to the origin's values", subscription, raised);
    }
}
