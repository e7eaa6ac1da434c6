using System.Globalization;
using Microsoft.Extensions.Logging;
using Navette.Catalog;
using Navette.Config;
using Navette.Synchronous;
using Npgsql;

namespace Navette.Setup;

/// <summary>
/// <c>navette apply</c>: brings every node to what the file declares. Checks everything first and reports every
/// problem at once; changes nothing until all checks pass; running it twice changes nothing the second time.
/// Fenced nodes (<c>fenced: true</c>) are only kept read-only, when they answer.
/// </summary>
/// <param name="additive">
/// Only adds what the file declares (role changes prepare the new subscriptions while the old ones still run): leaves
/// slots, origins, registrations and publications of subscriptions no longer in the file alone, and creates no slot for
/// a new subscription without initial copy (the role change creates it at the exact point it needs).
/// </param>
internal sealed class Reconciler(NavetteConfig config, ILogger log, bool additive = false)
{
    private readonly List<string> _problems = new();
    private readonly List<string> _actions = new();

    /// <summary>Tables each (origin node, set) publishes, resolved from the set's patterns.</summary>
    private readonly Dictionary<(string Node, string Set), List<SourceTable>> _resolved = new();

    /// <summary>copy_schema: per target node, the missing tables to create there (and what they need).</summary>
    private readonly Dictionary<string, SchemaCopyPlan> _schemaCopies = new();

    private MultiMasterSetup? _multiMaster;

    private readonly SynchronousSetup _synchronous = new(config, log);

    public IReadOnlyList<string> Actions => _actions;

    public async Task<IReadOnlyList<string>> RunAsync(CancellationToken ct)
    {
        var conns = await ConnectAllAsync(ct);
        try
        {
            await CheckAsync(conns, ct);
            if (_problems.Count > 0)
                throw new NavetteException($"navette apply found {_problems.Count} problem(s); nothing was changed:\n  - " + string.Join("\n  - ", _problems));

            // copy_schema first: everything after may refer to the tables it creates.
            foreach (var plan in _schemaCopies.Values.Where(p => !p.IsEmpty))
            {
                if (await plan.ExecuteAsync(conns[plan.Node], commit: true, log, ct) is { } failure)
                    throw new NavetteException(failure);
                _actions.AddRange(plan.Actions);
            }
            foreach (var (name, conn) in conns)
            {
                var applied = await CatalogInstaller.EnsureAsync(conn, ct);
                if (applied.Count > 0)
                    _actions.Add($"node {name}: navette catalog installed/upgraded to version {applied[^1]}");
            }
            _actions.AddRange(await _multiMaster!.ReconcileAsync(conns, ct));
            foreach (var (name, conn) in conns)
                await ReconcilePublicationsAsync(name, conn, ct);
            foreach (var sub in config.Subscriptions.Values)
                await ReconcileSubscriptionAsync(sub, conns[sub.From], conns[sub.To], ct);
            if (!additive)
                foreach (var (name, conn) in conns)
                    await DropOrphansAsync(name, conn, ct);
            _actions.AddRange(await DdlCaptureSetup.ReconcileAsync(config, conns, ct));
            _actions.AddRange(await Roles.Fencing.EnforceAsync(config, log, ct));
            // Last: once listed, an origin's commits wait for the subscription, so everything it needs comes first. Not while
            // a role change prepares subscriptions beside the running ones: its final, complete apply sets them.
            if (!additive)
                _actions.AddRange(await _synchronous.ReconcileAsync(conns, ct));
            return _actions;
        }
        finally
        {
            foreach (var c in conns.Values) await c.DisposeAsync();
        }
    }

    /// <summary>Opens one connection per node; a node that cannot be reached is a problem, and the others are still checked.</summary>
    private async Task<Dictionary<string, NpgsqlConnection>> ConnectAllAsync(CancellationToken ct)
    {
        var tasks = config.Nodes.Values.Where(n => !n.Fenced).Select(async node =>
        {
            var conn = new NpgsqlConnection(node.ToNpgsqlConnectionString());
            try
            {
                await conn.OpenAsync(ct);
                return (node.Name, Conn: conn, Error: (string?)null);
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
            {
                await conn.DisposeAsync();
                var reason = ConnInfo.ScrubSecrets(Daemon.SubscriptionWorker.Describe(e), node.ConnInfo);
                return (node.Name, Conn: (NpgsqlConnection?)null, Error: $"node {node.Name} ({node.RedactedConnInfo}): cannot connect: {reason}");
            }
        }).ToList();
        var results = await Task.WhenAll(tasks);
        _problems.AddRange(results.Where(r => r.Error is not null).Select(r => r.Error!));
        return results.Where(r => r.Conn is not null).ToDictionary(r => r.Name, r => r.Conn!);
    }

    private async Task CheckAsync(Dictionary<string, NpgsqlConnection> conns, CancellationToken ct)
    {
        var origins = config.Subscriptions.Values.GroupBy(s => s.From).ToDictionary(g => g.Key, g => g.Count());
        var incoming = config.Subscriptions.Values.GroupBy(s => s.To).ToDictionary(g => g.Key, g => g.Count());
        var tablesByNode = new Dictionary<string, List<SourceTable>>();
        var superusers = new HashSet<string>();
        // Nodes whose role may run the apply and read replication origins: superusers, or targets granted what it needs.
        var appliers = new HashSet<string>();

        foreach (var (name, conn) in conns)
        {
            var settings = await NodeInspector.SettingsAsync(conn, ct);
            var role = await NodeInspector.RoleAsync(conn, ct);
            // Every superuser node is checked for leftovers (a node the file no longer writes to may still hold an origin).
            if (role.Super) { superusers.Add(name); appliers.Add(name); }
            if (int.Parse(settings["server_version_num"], CultureInfo.InvariantCulture) < 150000)
                _problems.Add($"node {name}: PostgreSQL {settings["server_version_num"]} is too old; navette needs PostgreSQL 15 or later");
            if (!role.Super && !role.CanCreateInDb)
                _problems.Add($"node {name}: role {conn.UserName} cannot create the navette schema; GRANT CREATE ON DATABASE {Sql.Ident(conn.Database!)} TO {Sql.Ident(conn.UserName!)} (or connect as a superuser)");
            if (await NodeInspector.CatalogVersionAsync(conn, ct) is { } version && version > CatalogMigrations.LatestVersion)
                _problems.Add($"node {name}: its navette catalog is version {version}, newer than this navette's ({CatalogMigrations.LatestVersion}); upgrade navette");
            var maxSlots = int.Parse(settings["max_replication_slots"], CultureInfo.InvariantCulture);

            if (origins.TryGetValue(name, out var outgoing))
            {
                if (settings["wal_level"] != "logical")
                    _problems.Add($"node {name}: wal_level is '{settings["wal_level"]}' but logical decoding needs 'logical'; run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL");
                var ours = (await NodeInspector.NavetteSlotsAsync(conn, ct)).Count;
                var others = await NodeInspector.SlotCountAsync(conn, ct) - ours;
                if (maxSlots < others + outgoing)
                    _problems.Add($"node {name}: max_replication_slots is {maxSlots} but {others} slot(s) already exist and navette needs {outgoing} more; set max_replication_slots to at least {others + outgoing} (ALTER SYSTEM, then restart)");
                var maxSenders = int.Parse(settings["max_wal_senders"], CultureInfo.InvariantCulture);
                if (maxSenders < outgoing + 1)
                    _problems.Add($"node {name}: max_wal_senders is {maxSenders} but navette needs {outgoing + 1} ({outgoing} subscription(s) streaming plus one while a copy starts); set max_wal_senders to at least {outgoing + 1} (ALTER SYSTEM, then restart)");
                if (!role.Super && !role.Replication)
                    _problems.Add($"node {name}: role {conn.UserName} can neither create replication slots nor stream; ALTER ROLE {Sql.Ident(conn.UserName!)} REPLICATION (or connect as a superuser)");
                tablesByNode[name] = await NodeInspector.TablesAsync(conn, ct);
                _sequences[name] = await NodeInspector.SequencesAsync(conn, ct);
            }
            if (incoming.TryGetValue(name, out var receives))
            {
                if (!role.Super)
                {
                    var missing = await NodeInspector.MissingApplyGrantsAsync(conn, ct);
                    if (missing.Count == 0)
                        appliers.Add(name);
                    else
                        _problems.Add($"node {name}: role {conn.UserName} is not a superuser, and applying changes needs session_replication_role = replica and replication origins, which PostgreSQL 15 reserves to superusers unless granted; " +
                                      string.Join("; ", missing.Select(m => m.Replace("{role}", Sql.Ident(conn.UserName!), StringComparison.Ordinal))) +
                                      $" (or connect to {name} as a superuser; docs/security.md lists the target role's privileges)");
                }
                // PostgreSQL tracks at most max_replication_slots replication origins at once on a node.
                var otherOrigins = await NodeInspector.OtherOriginCountAsync(conn, ct);
                if (maxSlots < receives + otherOrigins)
                    _problems.Add($"node {name}: max_replication_slots is {maxSlots}, which also limits the replication origins a node can track, but it receives {receives} subscription(s)"
                                  + (otherOrigins > 0 ? $" and {otherOrigins} other replication origin(s) exist" : "")
                                  + $"; set max_replication_slots to at least {receives + otherOrigins} (ALTER SYSTEM, then restart)");
            }
        }

        var registrations = new Dictionary<string, Dictionary<string, (string OriginNode, string State)>>();
        foreach (var node in incoming.Keys.Where(appliers.Contains))
            registrations[node] = await NodeInspector.RegisteredSubscriptionsAsync(conns[node], ct);

        var schemaChecked = new HashSet<(string Node, string Schema)>();
        foreach (var sub in config.Subscriptions.Values)
        {
            if (!tablesByNode.TryGetValue(sub.From, out var available)) continue;
            foreach (var setName in sub.Sets)
            {
                if (_resolved.ContainsKey((sub.From, setName))) continue;
                _resolved[(sub.From, setName)] = ResolveSet(sub.From, conns[sub.From], config.Sets[setName], available);
            }
            if (!conns.TryGetValue(sub.To, out var to)) continue;
            // The first run of the daemon copies every table; rows already on the target would be mixed with the origin's.
            var copiesFirst = sub.InitialCopy && registrations.TryGetValue(sub.To, out var registered)
                              && (!registered.TryGetValue(sub.Name, out var reg) || reg.State == "initializing");
            var missing = new List<(SourceTable, List<TableColumn>)>();
            foreach (var table in sub.Sets.SelectMany(s => _resolved[(sub.From, s)]).Distinct())
            {
                var src = await NodeInspector.ColumnsAsync(conns[sub.From], table.Schema, table.Name, ct) ?? [];
                var dst = await NodeInspector.ColumnsAsync(to, table.Schema, table.Name, ct);
                if (dst is null && _schemaCopies.TryGetValue(sub.To, out var planned) && planned.Roots.TryGetValue((table.Schema, table.Name), out var creation))
                {
                    CompareTable(sub, table, src, creation.Columns); // another subscription's copy_schema creates it from its own origin
                    continue;
                }
                if (dst is null && sub.CopySchema)
                {
                    missing.Add((table, src));
                    continue;
                }
                CompareTable(sub, table, src, dst);
                if (dst is not null && !superusers.Contains(sub.To) && schemaChecked.Add((sub.To, table.Schema))
                    && !await NodeInspector.CanCreateInSchemaAsync(to, table.Schema, ct))
                    _problems.Add($"node {sub.To}: role {to.UserName} cannot create in schema {table.Schema}, and the initial copy rebuilds the indexes of its tables there after the data; " +
                                  $"GRANT CREATE ON SCHEMA {Sql.Ident(table.Schema)} TO {Sql.Ident(to.UserName!)} (or connect as a superuser)");
                if (dst is not null && !superusers.Contains(sub.To) && await NodeInspector.TableOwnerUnlessOwnedAsync(to, table.Schema, table.Name, ct) is { } owner)
                    _problems.Add($"subscription {sub.Name}: role {to.UserName} does not own table {table} on node {sub.To} (its owner is {owner.Name}), and the apply needs the owner's rights " +
                                  "(the initial copy empties it and rebuilds its indexes, schema changes alter it); " +
                                  // Membership of a superuser role would hand over everything it owns: only the table is suggested then.
                                  (owner.Super ? "" : $"GRANT {Sql.Ident(owner.Name)} TO {Sql.Ident(to.UserName!)} or ") +
                                  $"ALTER TABLE {table.QualifiedName} OWNER TO {Sql.Ident(to.UserName!)} (or connect as a superuser)");
                if (dst is not null && copiesFirst && await NodeInspector.HasRowsAsync(to, table, ct))
                    _problems.Add($"subscription {sub.Name}: table {table} on node {sub.To} already holds rows, which the initial copy would mix with those of {sub.From}; " +
                                  $"empty it (TRUNCATE {table.QualifiedName}) or set initial_copy: false if it already holds the same data");
            }
            if (missing.Count > 0)
            {
                if (!_schemaCopies.TryGetValue(sub.To, out var plan))
                    _schemaCopies[sub.To] = plan = new SchemaCopyPlan(sub.To);
                await SchemaCopier.PlanAsync(plan, sub, conns[sub.From], to, missing, _problems, ct);
            }
        }

        await CheckExistingStateAsync(conns, appliers, ct);
        DdlCaptureSetup.Check(config, superusers, conns, _problems);
        _multiMaster = new MultiMasterSetup(config, _resolved);
        await _multiMaster.CheckAsync(conns, _problems, ct);
        await _synchronous.CheckAsync(conns, _problems, ct);

        // Try each copy_schema plan in a transaction that is rolled back: what the target refuses is a problem now,
        // not a half-applied change later.
        foreach (var plan in _schemaCopies.Values.Where(p => !p.Broken && !p.IsEmpty))
        {
            if (await plan.ExecuteAsync(conns[plan.Node], commit: false, log, ct) is { } failure)
                _problems.Add(failure);
        }
    }

    /// <summary>What earlier applies and the daemon left behind that the file now contradicts.</summary>
    private async Task CheckExistingStateAsync(Dictionary<string, NpgsqlConnection> conns, HashSet<string> appliers, CancellationToken ct)
    {
        var slotsByNode = new Dictionary<string, List<(string Name, bool Active)>>();
        foreach (var node in config.Subscriptions.Values.Select(s => s.From).Distinct().Where(conns.ContainsKey))
            slotsByNode[node] = await NodeInspector.NavetteSlotsAsync(conns[node], ct);

        // Reading replication origins' progress needs a superuser or its grant; a target without either is already a problem.
        foreach (var (node, conn) in conns.Where(c => appliers.Contains(c.Key)))
        {
            var registered = await NodeInspector.RegisteredSubscriptionsAsync(conn, ct);
            foreach (var sub in config.Subscriptions.Values.Where(s => s.To == node))
            {
                if (!registered.TryGetValue(sub.Name, out var reg)) continue;
                if (reg.OriginNode != sub.From)
                {
                    _problems.Add($"subscription {sub.Name}: node {node} applies it from node {reg.OriginNode}, but {config.SourcePath} now says from: {sub.From}; " +
                                  "a subscription cannot change its origin: remove it, apply, then add it back under another name");
                    continue;
                }
                if (!slotsByNode.TryGetValue(sub.From, out var slots)) continue;
                var slot = Sql.SlotName(sub.Name);
                if (slots.Any(s => s.Name == slot) || reg.State is "initializing" or "copying") continue;
                var progressed = await NodeInspector.HasProgressAsync(conn, Sql.OriginName(sub.Name), ct);
                if (!sub.InitialCopy && reg.State == "streaming" && !progressed) continue; // apply creates the slot
                _problems.Add(MissingSlot(sub));
            }
        }

        if (additive) return;
        // A removed subscription's replication origin cannot be dropped while an apply session still holds it.
        foreach (var (node, conn) in conns.Where(c => appliers.Contains(c.Key)))
        {
            // Of any subscription in the file: origins are the cluster's, and another node may be a database beside this one.
            var keep = config.Subscriptions.Keys.Select(Sql.OriginName).ToHashSet();
            foreach (var origin in await NodeInspector.StringsAsync(conn, "SELECT roname FROM pg_replication_origin WHERE roname LIKE 'navette\\_%'", ct))
            {
                if (keep.Contains(origin)) continue;
                if (await NodeInspector.OriginInUseAsync(conn, origin, ct) is { } holder)
                    _problems.Add($"node {node}: replication origin {origin} belongs to a subscription no longer in {config.SourcePath} but is still in use ({holder}); stop navette run, then apply again");
            }
        }

        foreach (var (node, slots) in slotsByNode)
        {
            var wanted = config.Subscriptions.Values.Where(s => s.From == node).Select(s => Sql.SlotName(s.Name)).ToHashSet();
            foreach (var (slot, _) in slots.Where(s => s.Active && !wanted.Contains(s.Name)))
                _problems.Add(ActiveOrphanSlot(node, slot));
        }
    }

    private static string MissingSlot(SubscriptionConfig sub) =>
        $"subscription {sub.Name}: slot {Sql.SlotName(sub.Name)} is missing on node {sub.From} although {sub.To} already applied from it; changes made since are not retained. " +
        "Remove the subscription from the file and apply, empty the target tables, then add it back with initial_copy: true";

    private string ActiveOrphanSlot(string node, string slot) =>
        $"node {node}: slot {slot} belongs to a subscription no longer in {config.SourcePath} but is still streaming; stop navette run, then apply again";

    /// <summary>Each origin's sequences (schema, name): a set may list them; they travel as sequence markers, not in publications.</summary>
    private readonly Dictionary<string, List<(string Schema, string Name)>> _sequences = new(StringComparer.Ordinal);

    private List<SourceTable> ResolveSet(string node, NpgsqlConnection conn, SetConfig set, List<SourceTable> available)
    {
        var result = new List<SourceTable>();
        foreach (var pattern in set.Tables)
        {
            var matches = available.Where(t => pattern.Matches(t.Schema, t.Name)).ToList();
            if (matches.Count == 0)
            {
                if (_sequences.TryGetValue(node, out var sequences) && sequences.Any(s => pattern.Matches(s.Schema, s.Name)))
                    continue;
                if (pattern.IsPattern)
                    log.LogWarning("{File}:{Line}: pattern {Pattern} of set {Set} matches no table on node {Node}", config.SourcePath, pattern.Line, pattern.Text, set.Name, node);
                else
                    _problems.Add($"{config.SourcePath}:{pattern.Line}: table {pattern.Text} of set {set.Name} does not exist on node {node} (or is a partition: list its partitioned parent instead)");
            }
            foreach (var t in matches)
            {
                if (result.Contains(t)) continue;
                if (t.Persistence != 'p')
                {
                    _problems.Add($"set {set.Name}: table {t} on node {node} is {(t.Persistence == 'u' ? "unlogged" : "temporary")}; its changes are not in the WAL and cannot be replicated");
                    continue;
                }
                if (!t.HasUsableIdentity)
                    _problems.Add($"set {set.Name}: table {t} on node {node} has no primary key or replica identity, so its UPDATEs and DELETEs cannot be replicated; add a primary key, or run ALTER TABLE {t.QualifiedName} REPLICA IDENTITY FULL;");
                if (!t.Owned)
                    _problems.Add($"set {set.Name}: role {conn.UserName} does not own table {t} on node {node}, and only its owner can publish it; ALTER TABLE {t.QualifiedName} OWNER TO {Sql.Ident(conn.UserName!)} (or connect as a superuser)");
                else if (!t.Readable)
                    _problems.Add($"set {set.Name}: role {conn.UserName} cannot read table {t} on node {node}, which the initial copy needs; GRANT SELECT ON {t.QualifiedName} TO {Sql.Ident(conn.UserName!)}");
                result.Add(t);
            }
        }
        return result;
    }

    private void CompareTable(SubscriptionConfig sub, SourceTable table, List<TableColumn> src, List<TableColumn>? dst)
    {
        if (dst is null)
        {
            _problems.Add($"subscription {sub.Name}: table {table} is missing on node {sub.To}; create it there with the same columns as on {sub.From}, or set copy_schema: true on the subscription to have navette apply create it");
            return;
        }
        var byName = dst.ToDictionary(c => c.Name);
        foreach (var c in src.Where(c => !c.Generated))
        {
            if (!byName.TryGetValue(c.Name, out var d))
                _problems.Add($"subscription {sub.Name}: column {c.Name} of {table} ({c.Type}) exists on {sub.From} but not on {sub.To}; ALTER TABLE {table.QualifiedName} ADD COLUMN {Sql.Ident(c.Name)} {c.Type} on {sub.To}");
            else if (d.Generated)
                _problems.Add($"subscription {sub.Name}: column {c.Name} of {table} is generated on {sub.To} but holds data on {sub.From}; replicated values cannot be written into it");
            else if (d.Type != c.Type)
                _problems.Add($"subscription {sub.Name}: column {c.Name} of {table} is {c.Type} on {sub.From} but {d.Type} on {sub.To}; make the types identical");
        }
        var sourceNames = src.Where(c => !c.Generated).Select(c => c.Name).ToHashSet();
        foreach (var d in dst.Where(d => !sourceNames.Contains(d.Name) && d.NotNull && !d.HasDefault && !d.Generated))
            _problems.Add($"subscription {sub.Name}: column {d.Name} of {table} exists only on {sub.To} and is NOT NULL without a default, so replicated rows cannot be inserted; give it a default or drop NOT NULL");
    }

    private async Task ReconcilePublicationsAsync(string node, NpgsqlConnection conn, CancellationToken ct)
    {
        var wanted = _resolved.Where(kv => kv.Key.Node == node).ToList();
        foreach (var ((_, set), tables) in wanted)
        {
            var pub = Sql.PublicationName(set);
            var desired = tables.Select(t => (t.Schema, t.Name)).Concat(Markers.MarkerTables.Published.Select(m => (Markers.MarkerTables.Schema, m))).ToHashSet();
            var exists = (await NodeInspector.StringsAsync(conn, $"SELECT pubname FROM pg_publication WHERE pubname = {Sql.Literal(pub)}", ct)).Count > 0;
            var list = string.Join(", ", desired.Select(t => Sql.Qualified(t.Item1, t.Item2)));
            if (!exists)
            {
                await ExecAsync(conn, $"CREATE PUBLICATION {Sql.Ident(pub)} FOR TABLE {list} WITH (publish = 'insert, update, delete, truncate', publish_via_partition_root = true)", ct);
                _actions.Add($"node {node}: publication {pub} created with {tables.Count} table(s)");
                continue;
            }
            var current = new HashSet<(string, string)>();
            await using (var cmd = new NpgsqlCommand("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1", conn))
            {
                cmd.Parameters.AddWithValue(pub);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct)) current.Add((r.GetString(0), r.GetString(1)));
            }
            if (!current.SetEquals(desired))
            {
                var added = desired.Except(current).Where(t => t.Item1 != Markers.MarkerTables.Schema).ToList();
                // Tables joining a one-way set: in the same transaction, a marker telling the subscriptions reading it
                // to copy them where it arrives, then stream them (a mesh member's tables are its own business).
                var join = added.Count > 0 && !config.Sets[set].MultiMaster && current.Contains((Markers.MarkerTables.Schema, Markers.MarkerTables.Ddl));
                await using (var tx = await conn.BeginTransactionAsync(ct))
                {
                    await using (var alter = new NpgsqlCommand($"ALTER PUBLICATION {Sql.Ident(pub)} SET TABLE {list}", conn, tx))
                        await alter.ExecuteNonQueryAsync(ct);
                    if (join)
                    {
                        await using var marker = new NpgsqlCommand("""
                            INSERT INTO navette.ddl (kind, set_name, command, object_types, object_schemas, object_names, search_path)
                            VALUES ('join', $1, '', array_fill('table'::text, ARRAY[cardinality($2::text[])]), $2, $3, current_setting('search_path'))
                            """, conn, tx);
                        marker.Parameters.AddWithValue(set);
                        marker.Parameters.AddWithValue(added.Select(t => t.Item1).ToArray());
                        marker.Parameters.AddWithValue(added.Select(t => t.Item2).ToArray());
                        await marker.ExecuteNonQueryAsync(ct);
                    }
                    await tx.CommitAsync(ct);
                }
                _actions.Add($"node {node}: publication {pub} now has {tables.Count} table(s) (+{desired.Except(current).Count()} -{current.Except(desired).Count()})" +
                             (join ? $"; {string.Join(", ", added.Select(t => Sql.Qualified(t.Item1, t.Item2)))} copied by each subscription reading it, then streamed" : ""));
            }
        }
        if (additive) return;
        var keep = wanted.Select(w => Sql.PublicationName(w.Key.Set)).ToHashSet();
        foreach (var pub in await NodeInspector.StringsAsync(conn, "SELECT pubname FROM pg_publication WHERE pubname LIKE 'navette\\_%'", ct))
        {
            if (keep.Contains(pub)) continue;
            await ExecAsync(conn, $"DROP PUBLICATION {Sql.Ident(pub)}", ct);
            _actions.Add($"node {node}: publication {pub} dropped (no subscription reads it any more)");
        }
    }

    private async Task ReconcileSubscriptionAsync(SubscriptionConfig sub, NpgsqlConnection from, NpgsqlConnection to, CancellationToken ct)
    {
        var origin = Sql.OriginName(sub.Name);
        var slot = Sql.SlotName(sub.Name);

        if ((await NodeInspector.StringsAsync(to, $"SELECT roname FROM pg_replication_origin WHERE roname = {Sql.Literal(origin)}", ct)).Count == 0)
        {
            await ExecAsync(to, $"SELECT pg_replication_origin_create({Sql.Literal(origin)})", ct);
            _actions.Add($"node {sub.To}: replication origin {origin} created");
        }

        string? state;
        await using (var cmd = new NpgsqlCommand("SELECT state FROM navette.subscription WHERE name = $1", to))
        {
            cmd.Parameters.AddWithValue(sub.Name);
            state = await cmd.ExecuteScalarAsync(ct) as string;
        }
        var slotExists = (await NodeInspector.NavetteSlotsAsync(from, ct)).Any(s => s.Name == slot);

        if (state is null)
        {
            // A mesh member's subscription from another member waits for the seed's copy to position it, unless that
            // copy is long over: the member was there already, and what the other (new) member writes starts now.
            var joins = sub.Join is not null && await CopyPendingAsync(to, sub.Join.CopySubscription, ct);
            var initial = sub.InitialCopy || joins ? "initializing" : "streaming";
            await using var cmd = new NpgsqlCommand(
                "INSERT INTO navette.subscription (name, origin_node, sets, forward, state) VALUES ($1, $2, $3, $4, $5)", to);
            cmd.Parameters.AddWithValue(sub.Name);
            cmd.Parameters.AddWithValue(sub.From);
            cmd.Parameters.AddWithValue(sub.Sets.ToArray());
            cmd.Parameters.AddWithValue(sub.Forward);
            cmd.Parameters.AddWithValue(initial);
            await cmd.ExecuteNonQueryAsync(ct);
            _actions.Add($"node {sub.To}: subscription {sub.Name} registered ({(sub.InitialCopy ? "initial copy on first run" : joins ? $"starts where {sub.Join!.CopySubscription}'s copy leaves it" : "no initial copy")})");
            state = initial;
        }
        else
        {
            await using var cmd = new NpgsqlCommand("""
                UPDATE navette.subscription SET origin_node = $2, sets = $3, forward = $4, updated_at = now()
                 WHERE name = $1 AND (origin_node, sets, forward) IS DISTINCT FROM ($2, $3, $4)
                """, to);
            cmd.Parameters.AddWithValue(sub.Name);
            cmd.Parameters.AddWithValue(sub.From);
            cmd.Parameters.AddWithValue(sub.Sets.ToArray());
            cmd.Parameters.AddWithValue(sub.Forward);
            if (await cmd.ExecuteNonQueryAsync(ct) > 0)
                _actions.Add($"node {sub.To}: subscription {sub.Name} updated (sets {string.Join(", ", sub.Sets)}, forward {sub.Forward.ToString().ToLowerInvariant()})");
        }

        if (!slotExists)
        {
            if (sub.Join is not null && state == "initializing")
            {
                // Before the seed's copy starts: the copy waits on the seed for a fence written after this point.
                await ExecAsync(from, $"SELECT pg_create_logical_replication_slot({Sql.Literal(slot)}, 'pgoutput')", ct);
                _actions.Add($"node {sub.From}: slot {slot} created (streaming starts where the copy of {sub.Join.CopySubscription} leaves it)");
                return;
            }
            if (state is "initializing" or "copying")
                return; // the worker creates the slot together with the snapshot it copies under
            if (!sub.InitialCopy && state == "streaming" && !await NodeInspector.HasProgressAsync(to, origin, ct))
            {
                if (additive) return;
                await ExecAsync(from, $"SELECT pg_create_logical_replication_slot({Sql.Literal(slot)}, 'pgoutput')", ct);
                _actions.Add($"node {sub.From}: slot {slot} created (streaming starts from now, no initial copy)");
                return;
            }
            throw new NavetteException(MissingSlot(sub)); // found by the checks already, unless it changed since
        }
    }

    /// <summary>True while the subscription has not finished (or started) its initial copy on this target.</summary>
    private static async Task<bool> CopyPendingAsync(NpgsqlConnection target, string subscription, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT state FROM navette.subscription WHERE name = $1", target);
        cmd.Parameters.AddWithValue(subscription);
        return await cmd.ExecuteScalarAsync(ct) is not string state || state is "initializing" or "copying";
    }

    private async Task DropOrphansAsync(string node, NpgsqlConnection conn, CancellationToken ct)
    {
        var slots = config.Subscriptions.Values.Where(s => s.From == node).Select(s => Sql.SlotName(s.Name)).ToHashSet();
        foreach (var (slot, active) in await NodeInspector.NavetteSlotsAsync(conn, ct))
        {
            if (slots.Contains(slot)) continue;
            if (active)
                throw new NavetteException(ActiveOrphanSlot(node, slot)); // found by the checks already, unless it started since
            await ExecAsync(conn, $"SELECT pg_drop_replication_slot({Sql.Literal(slot)})", ct);
            _actions.Add($"node {node}: slot {slot} dropped (its subscription was removed; the WAL it retained is released)");
        }
        var incoming = config.Subscriptions.Values.Where(s => s.To == node).Select(s => s.Name).ToHashSet();
        foreach (var name in await NodeInspector.StringsAsync(conn, "SELECT name FROM navette.subscription", ct))
        {
            if (incoming.Contains(name)) continue;
            // An interrupted initial copy may have left the target's indexes dropped: they go back first.
            var deferred = await NodeInspector.StringsAsync(conn,
                $"SELECT definition FROM navette.copy_deferred_index WHERE subscription = {Sql.Literal(name)} ORDER BY definition NOT LIKE 'ALTER TABLE%', name", ct);
            foreach (var definition in deferred)
                await ExecAsync(conn, definition, ct);
            await ExecAsync(conn, $"DELETE FROM navette.subscription WHERE name = {Sql.Literal(name)}; DELETE FROM navette.copy_progress WHERE subscription = {Sql.Literal(name)}; " +
                                  $"DELETE FROM navette.copy_deferred_index WHERE subscription = {Sql.Literal(name)}", ct);
            _actions.Add($"node {node}: subscription {name} unregistered" + (deferred.Count > 0 ? $" ({deferred.Count} index(es) its interrupted copy had deferred rebuilt)" : ""));
        }
        // Replication origins belong to the whole cluster, which can hold several nodes (databases): only those of
        // subscriptions gone from the file are orphans.
        var origins = config.Subscriptions.Keys.Select(Sql.OriginName).ToHashSet();
        foreach (var origin in await NodeInspector.StringsAsync(conn, "SELECT roname FROM pg_replication_origin WHERE roname LIKE 'navette\\_%'", ct))
        {
            if (origins.Contains(origin)) continue;
            await ExecAsync(conn, $"SELECT pg_replication_origin_drop({Sql.Literal(origin)})", ct);
            _actions.Add($"node {node}: replication origin {origin} dropped");
        }
        // Initial copies write under per-connection origins named navette-copy:<subscription>:<n>; one left by
        // a copy that was interrupted and whose subscription was then removed would otherwise stay forever.
        foreach (var origin in await NodeInspector.StringsAsync(conn, "SELECT roname FROM pg_replication_origin WHERE roname LIKE 'navette-copy:%'", ct))
        {
            var parts = origin.Split(':');
            if (parts.Length == 3 && config.Subscriptions.ContainsKey(parts[1])) continue;
            await ExecAsync(conn, $"SELECT pg_replication_origin_drop({Sql.Literal(origin)})", ct);
            _actions.Add($"node {node}: replication origin {origin} dropped (left by an interrupted copy)");
        }
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
