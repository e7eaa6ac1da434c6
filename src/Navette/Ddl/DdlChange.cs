using Npgsql;
using Navette.Apply;

namespace Navette.Ddl;

/// <summary>A row of <c>navette.ddl</c> as the stream carries it (every value in text form).</summary>
internal sealed record DdlChange(long Id, string Kind, string? SetName, string Command, string SearchPath, string Role,
    string?[] Tags, string?[] Types, string?[] Schemas, string?[] Names)
{
    public static async Task<DdlChange> ParseAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyDictionary<string, string?> row, CancellationToken ct)
    {
        var arrays = await MarkerApplier.ParseArraysAsync(conn, tx, ct,
            row.GetValueOrDefault("command_tags") ?? "{}", row.GetValueOrDefault("object_types") ?? "{}",
            row.GetValueOrDefault("object_schemas") ?? "{}", row.GetValueOrDefault("object_names") ?? "{}");
        return new DdlChange(
            long.Parse(row["id"]!, System.Globalization.CultureInfo.InvariantCulture), row["kind"]!, row.GetValueOrDefault("set_name"), row["command"]!,
            row["search_path"]!, row.GetValueOrDefault("role_name") ?? "",
            arrays[0]!, arrays[1]!, arrays[2]!, arrays[3]!);
    }

    /// <summary>The command on one line, cut to <paramref name="max"/> characters, for logs and errors.</summary>
    public static string Abbreviate(string command, int max = 200)
    {
        var line = string.Join(' ', command.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        return line.Length <= max ? line : line[..max] + "...";
    }
}
