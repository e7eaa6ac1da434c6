using Npgsql;
using NpgsqlTypes;

namespace Navette.Ddl;

/// <summary>A row of <c>navette.ddl</c> as the stream carries it (every value in text form).</summary>
internal sealed record DdlChange(long Id, string Kind, string? SetName, string Command, string SearchPath, string Role,
    string?[] Tags, string?[] Types, string?[] Schemas, string?[] Names)
{
    public static async Task<DdlChange> ParseAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyDictionary<string, string?> row, CancellationToken ct)
    {
        // The arrays come in PostgreSQL's text form: PostgreSQL parses them.
        await using var cmd = new NpgsqlCommand("SELECT $1::text[], $2::text[], $3::text[], $4::text[]", conn, tx);
        foreach (var column in new[] { "command_tags", "object_types", "object_schemas", "object_names" })
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)row.GetValueOrDefault(column) ?? "{}", NpgsqlDbType = NpgsqlDbType.Text });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new DdlChange(
            long.Parse(row["id"]!, System.Globalization.CultureInfo.InvariantCulture), row["kind"]!, row.GetValueOrDefault("set_name"), row["command"]!,
            row["search_path"]!, row.GetValueOrDefault("role_name") ?? "",
            r.GetFieldValue<string?[]>(0), r.GetFieldValue<string?[]>(1), r.GetFieldValue<string?[]>(2), r.GetFieldValue<string?[]>(3));
    }

    /// <summary>The command on one line, cut to <paramref name="max"/> characters, for logs and errors.</summary>
    public static string Abbreviate(string command, int max = 200)
    {
        var line = string.Join(' ', command.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        return line.Length <= max ? line : line[..max] + "...";
    }
}
