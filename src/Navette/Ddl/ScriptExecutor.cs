using Microsoft.Extensions.Logging;
using Navette.Config;
using Npgsql;

namespace Navette.Ddl;

/// <summary>What <c>navette execute</c> did: the node the script ran on and its marker's id.</summary>
internal sealed record ScriptRun(string Node, long Id, TimeSpan Took);

/// <summary>
/// <c>navette execute --set S SCRIPT</c>: runs a script on the set's origin in one transaction whose first row is the
/// script's marker, so every subscription carrying the set runs the same script at the same point of its stream (and
/// does not apply the script's own row changes a second time).
/// </summary>
internal sealed class ScriptExecutor(NavetteConfig config, ILogger log)
{
    public async Task<ScriptRun> RunAsync(string setName, string scriptPath, string? node, CancellationToken ct)
    {
        if (!config.Sets.TryGetValue(setName, out var set))
            throw new NavetteException($"no set named {setName} in {config.SourcePath}; defined: {string.Join(", ", config.Sets.Keys)}");
        if (set.Ddl == DdlMode.None)
            throw new NavetteException($"set {setName} has ddl: none in {config.SourcePath}:{set.Line}: its schema changes are not replicated; " +
                                       "run the script on each node yourself, or set ddl: execute (or auto)");
        var origins = config.Subscriptions.Values.Where(s => s.Sets.Contains(setName)).Select(s => s.From).Distinct().Order(StringComparer.Ordinal).ToList();
        if (origins.Count == 0)
            throw new NavetteException($"set {setName}: no subscription carries it in {config.SourcePath}, so there is nothing to replicate the script to");
        if (node is null)
        {
            if (origins.Count > 1)
                throw new NavetteException($"set {setName} is sent from several nodes ({string.Join(", ", origins)}): choose the one to run the script on with --node");
            node = origins[0];
        }
        else if (!origins.Contains(node))
        {
            throw new NavetteException(config.Nodes.ContainsKey(node)
                ? $"node {node} does not send set {setName} to any node; the set is sent from {string.Join(", ", origins)}"
                : $"no node named {node} in {config.SourcePath}; defined: {string.Join(", ", config.Nodes.Keys)}");
        }
        string script;
        try
        {
            script = await File.ReadAllTextAsync(scriptPath, ct);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NavetteException($"{scriptPath}: {e.Message}");
        }
        if (string.IsNullOrWhiteSpace(script))
            throw new NavetteException($"{scriptPath}: the script is empty");

        var started = DateTime.UtcNow;
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(config.Nodes[node].ToNpgsqlConnectionString())
        {
            ApplicationName = "navette_execute",
            CommandTimeout = 0,
        }.ConnectionString);
        await conn.OpenAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        long id;
        // The script's commands are carried by its marker, not captured one by one (ddl: auto).
        await using (var quiet = new NpgsqlCommand("SELECT set_config('navette.ddl_replaying', 'on', true)", conn, tx))
            await quiet.ExecuteNonQueryAsync(ct);
        await using (var marker = new NpgsqlCommand(
                         "INSERT INTO navette.ddl (kind, set_name, command, search_path) VALUES ('execute', $1, $2, current_setting('search_path')) RETURNING id", conn, tx))
        {
            marker.Parameters.AddWithValue(setName);
            marker.Parameters.AddWithValue(script);
            try
            {
                id = (long)(await marker.ExecuteScalarAsync(ct))!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                throw new NavetteException($"node {node} has no navette.ddl table: run navette apply first (it installs the catalog's newer version)");
            }
        }
        try
        {
            await using var cmd = new NpgsqlCommand(script, conn, tx);
            await cmd.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }
        catch (PostgresException e)
        {
            throw new NavetteException($"{scriptPath}{Where(script, e)}: {e.MessageText}" + (e.Detail is { Length: > 0 } d ? $" ({d})" : "") +
                                       $"; the script was rolled back on node {node} and nothing was replicated");
        }
        var took = DateTime.UtcNow - started;
        log.LogInformation("navette execute: {Script} ran on node {Node} for set {Set} in {Seconds:F2} s (schema change {Id}); the replicas run it in the stream",
            scriptPath, node, setName, took.TotalSeconds, id);
        return new ScriptRun(node, id, took);
    }

    /// <summary>":LINE" of the failing statement in the script, when it can be told.</summary>
    private static string Where(string script, PostgresException e)
    {
        var statement = e.BatchCommand?.CommandText;
        if (string.IsNullOrEmpty(statement)) return "";
        var at = script.IndexOf(statement.Trim(), StringComparison.Ordinal);
        if (at < 0) return "";
        var offset = at + (e.Position > 0 ? Math.Min(e.Position - 1, statement.Trim().Length) : 0);
        return ":" + (script.AsSpan(0, offset).Count('\n') + 1);
    }
}
