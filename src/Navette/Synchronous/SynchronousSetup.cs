using Microsoft.Extensions.Logging;
using Navette.Config;
using Npgsql;

namespace Navette.Synchronous;

/// <summary>
/// The <c>navette apply</c> part of synchronous replication: on every node, <c>synchronous_standby_names</c> lists
/// exactly the walsenders of the synchronous subscriptions reading from it (names <c>navette_*</c>), with their
/// quorum, and keeps every other name. Checked with the rest before anything changes; a role without the right to
/// change it gets the exact statement to run instead.
/// </summary>
internal sealed class SynchronousSetup(NavetteConfig config, ILogger log)
{
    private readonly IReadOnlyDictionary<string, SynchronousGroup> _groups = SynchronousGroup.For(config);
    private readonly Dictionary<string, StandbyNames> _planned = new(StringComparer.Ordinal);

    /// <summary>What the node's value becomes, computed from what it is now.</summary>
    public StandbyNames Desired(string node, StandbyNames current, out string? note)
    {
        var group = _groups.GetValueOrDefault(node);
        return current.Combine(group?.Names ?? [], group?.Quorum ?? 0, out note);
    }

    public async Task CheckAsync(IReadOnlyDictionary<string, NpgsqlConnection> conns, List<string> problems, CancellationToken ct)
    {
        foreach (var (node, conn) in conns)
        {
            var setting = await StandbyNamesSetting.ReadAsync(conn, ct);
            var concerned = _groups.ContainsKey(node) || setting.Parsed.NavetteNames.Count > 0;
            if (!concerned) continue;
            if (setting.ParseProblem is { } problem)
            {
                problems.Add($"node {node}: synchronous_standby_names '{setting.Value}' cannot be read ({problem}); fix it so that navette can add its names to it");
                continue;
            }
            StandbyNames desired;
            try
            {
                desired = Desired(node, setting.Parsed, out _);
            }
            catch (NavetteException e)
            {
                problems.Add($"node {node}: {e.Message}");
                continue;
            }
            if (!desired.SameAs(setting.Parsed) && setting.Overridden)
                problems.Add($"node {node}: synchronous_standby_names is set on the server's {setting.Source} ('{setting.Value}'), which ALTER SYSTEM cannot override; "
                             + $"set it there to '{desired.Format()}'");
            _planned[node] = desired;
        }
    }

    /// <summary>Sets each node's value (after the checks passed); returns what was done or what the operator must do.</summary>
    public async Task<IReadOnlyList<string>> ReconcileAsync(IReadOnlyDictionary<string, NpgsqlConnection> conns, CancellationToken ct)
    {
        var actions = new List<string>();
        foreach (var node in _planned.Keys)
        {
            var conn = conns[node];
            var group = _groups.GetValueOrDefault(node);
            string? note = null;
            var setting = await StandbyNamesSetting.ReadAsync(conn, ct);
            var desired = Desired(node, setting.Parsed, out note);
            if (!desired.SameAs(setting.Parsed))
            {
                if (!setting.CanChange)
                {
                    var missing = !setting.CanAlterSystem ? "ALTER SYSTEM on synchronous_standby_names" : "EXECUTE on pg_reload_conf()";
                    var line = $"node {node}: synchronous_standby_names must become '{desired.Format()}' (now '{setting.Value}') but role {conn.UserName} lacks {missing}; "
                               + $"as a superuser run: {StandbyNamesSetting.ManualStatement(desired)}  (or put {StandbyNamesSetting.ConfLine(desired)} in postgresql.conf and reload)";
                    log.LogWarning("{Line}", line);
                    actions.Add("warning: " + line);
                }
                else
                {
                    var (before, after) = await StandbyNamesSetting.ChangeAsync(conn, s => Desired(node, s.Parsed, out note), ct);
                    if (after is not null)
                        actions.Add($"node {node}: synchronous_standby_names set to '{after.Format()}' (was '{before.Value}')"
                                    + (group is null ? "; no synchronous subscription reads from it any more" : $"; commits there wait for {group.Describe()}"));
                }
            }
            if (note is not null)
            {
                log.LogWarning("node {Node}: {Note}", node, note);
                actions.Add($"warning: node {node}: {note}");
            }
            foreach (var sub in group?.Subscriptions ?? [])
            {
                if (sub.DegradeAfter is not null || !conns.TryGetValue(sub.To, out var target)) continue;
                await using var cmd = new NpgsqlCommand("SELECT state FROM navette.subscription WHERE name = $1", target);
                cmd.Parameters.AddWithValue(sub.Name);
                if (await cmd.ExecuteScalarAsync(ct) is "initializing" or "copying")
                    actions.Add($"warning: subscription {sub.Name} is synchronous but has not finished its initial copy: commits on {node} wait until it has and its stream "
                                + "has caught up; turn synchronous on after the copy, or give it degrade_after (docs/synchronous.md)");
            }
            if (group is not null && setting.SynchronousCommit is "off" or "local")
                actions.Add($"warning: node {node}: synchronous_commit is '{setting.SynchronousCommit}' by default there, so commits do not wait for any standby unless their session sets it to on, remote_apply or remote_write");
        }
        return actions;
    }
}
