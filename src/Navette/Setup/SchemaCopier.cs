using System.Data;
using System.Globalization;
using Navette.Config;
using Npgsql;
using NpgsqlTypes;

namespace Navette.Setup;

/// <summary>
/// <c>copy_schema: true</c>: writes into a <see cref="SchemaCopyPlan"/> the DDL that creates on a target the tables
/// of a subscription missing there, generated from the origin's catalogs (never pg_dump): the schemas, enum,
/// domain, composite and range types they use that the target lacks, the sequences their columns use (serial
/// sequences owned by their column, identity columns as identity), columns with type, collation, NOT NULL,
/// default or generation expression, partitions, constraints, indexes, foreign keys between created tables,
/// and the replica identity.
/// </summary>
/// <remarks>
/// The origin is read in a read-only repeatable-read transaction with only <c>pg_catalog</c> on the search path,
/// so that format_type, pg_get_expr, pg_get_constraintdef and pg_get_indexdef qualify every other name.
/// </remarks>
internal sealed class SchemaCopier
{
    /// <summary>First OID available to user objects: types below it are built in and exist everywhere.</summary>
    private const uint FirstNormalObjectId = 16384;

    private readonly SchemaCopyPlan _plan;
    private readonly SubscriptionConfig _sub;
    private readonly NpgsqlConnection _origin;
    private readonly NpgsqlTransaction _tx;
    private readonly NpgsqlConnection _target;
    private readonly List<string> _problems;
    private readonly HashSet<uint> _visitedTypes = new();
    private string _context = "";

    private SchemaCopier(SchemaCopyPlan plan, SubscriptionConfig sub, NpgsqlConnection origin, NpgsqlTransaction tx, NpgsqlConnection target, List<string> problems)
    {
        _plan = plan;
        _sub = sub;
        _origin = origin;
        _tx = tx;
        _target = target;
        _problems = problems;
    }

    /// <summary>Adds to <paramref name="plan"/> the creation of <paramref name="tables"/> (missing on the target) as they are on the origin.</summary>
    public static async Task PlanAsync(
        SchemaCopyPlan plan, SubscriptionConfig sub, NpgsqlConnection origin, NpgsqlConnection target,
        IReadOnlyList<(SourceTable Table, List<TableColumn> Columns)> tables, List<string> problems, CancellationToken ct)
    {
        await using var tx = await origin.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        await using (var cmd = new NpgsqlCommand("SET TRANSACTION READ ONLY; SET LOCAL search_path = pg_catalog", origin, tx))
            await cmd.ExecuteNonQueryAsync(ct);
        var copier = new SchemaCopier(plan, sub, origin, tx, target, problems);
        foreach (var (table, columns) in tables)
        {
            if (plan.Roots.ContainsKey((table.Schema, table.Name))) continue;
            plan.Roots[(table.Schema, table.Name)] = (sub.From, columns);
            copier._context = $"{table.Schema}.{table.Name}";
            await copier.PlanTableAsync(table, ct);
        }
        await tx.RollbackAsync(ct);
    }

    private void Problem(string reason)
    {
        _plan.Broken = true;
        _problems.Add($"subscription {_sub.Name}: copy_schema cannot create {_context} on node {_sub.To}: {reason}");
    }

    // ------------------------------------------------------------------ tables

    private sealed record Column(short Number, string Name, uint TypeOid, string Type, bool NotNull, string Identity, string Generated,
        string? Default, string? CollationSchema, string? Collation);

    private sealed record Sequence(uint Oid, string Schema, string Name, string Type, long Start, long Increment, long Min, long Max,
        long Cache, bool Cycle, long? LastValue, short? OwnerColumn, string? OwnerKind)
    {
        public string QualifiedName => Sql.Qualified(Schema, Name);

        public string Options =>
            string.Create(CultureInfo.InvariantCulture, $"START WITH {Start} INCREMENT BY {Increment} MINVALUE {Min} MAXVALUE {Max} CACHE {Cache} {(Cycle ? "CYCLE" : "NO CYCLE")}");
    }

    private sealed record Relation(uint Oid, string Schema, string Name, char Kind, char ReplicaIdentity, string? PartitionKey,
        string? IdentityIndex, string? ParentSchema, string? ParentName, string? Bound)
    {
        public string QualifiedName => Sql.Qualified(Schema, Name);
    }

    private async Task PlanTableAsync(SourceTable table, CancellationToken ct)
    {
        var root = (await QueryAsync("""
            SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relreplident::text,
                   CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                   (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident),
                   NULL::name, NULL::name, NULL::text
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
            """, ReadRelation, ct, table.Schema, table.Name)).SingleOrDefault();
        if (root is null)
        {
            Problem($"it no longer exists on {_sub.From}");
            return;
        }
        var partitions = root.Kind == 'p'
            ? await QueryAsync("""
                SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relreplident::text,
                       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                       (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident),
                       pn.nspname, pc.relname, pg_get_expr(c.relpartbound, c.oid)
                  FROM pg_partition_tree($1::regclass) t
                  JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
                  JOIN pg_class pc ON pc.oid = t.parentrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                 WHERE t.level > 0
                 ORDER BY t.level, n.nspname, c.relname
                """, ReadRelation, ct, root.Oid)
            : [];

        await EnsureSchemaAsync(root.Schema, ct);
        foreach (var p in partitions) await EnsureSchemaAsync(p.Schema, ct);

        var columns = await QueryAsync("""
            SELECT a.attnum, a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid), cn.nspname, co.collname
              FROM pg_attribute a
              JOIN pg_type t ON t.oid = a.atttypid
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> t.typcollation
              LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """, r => new Column(r.GetInt16(0), r.GetString(1), r.GetFieldValue<uint>(2), r.GetString(3), r.GetBoolean(4), r.GetString(5), r.GetString(6),
                Str(r, 7), Str(r, 8), Str(r, 9)), ct, root.Oid);
        foreach (var c in columns)
        {
            await EnsureTypeAsync(c.TypeOid, ct);
            if (c.Collation is not null)
                await EnsureCollationAsync(c.CollationSchema!, c.Collation, $"column {c.Name}", ct);
        }

        // Sequences the columns use: owned ones (serial: 'a', identity: 'i') and any a default calls nextval on.
        var sequences = await QueryAsync("""
            SELECT s.oid, n.nspname, s.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmin, q.seqmax,
                   q.seqcache, q.seqcycle, ps.last_value, own.refobjsubid, own.deptype::text
              FROM pg_class s
              JOIN pg_namespace n ON n.oid = s.relnamespace
              JOIN pg_sequence q ON q.seqrelid = s.oid
              LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = s.relname
              LEFT JOIN pg_depend own ON own.classid = 'pg_class'::regclass AND own.objid = s.oid
                    AND own.refclassid = 'pg_class'::regclass AND own.refobjid = $1 AND own.deptype IN ('a', 'i')
             WHERE s.relkind = 'S'
               AND (own.objid IS NOT NULL OR s.oid IN (
                    SELECT d.refobjid FROM pg_attrdef ad
                      JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
                     WHERE ad.adrelid = $1))
             ORDER BY n.nspname, s.relname
            """, r => new Sequence(r.GetFieldValue<uint>(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetInt64(5),
                r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetBoolean(9), r.IsDBNull(10) ? null : r.GetInt64(10),
                r.IsDBNull(11) ? null : (short)r.GetInt32(11), Str(r, 12)), ct, root.Oid);
        foreach (var s in sequences.Where(s => s.OwnerKind != "i"))
        {
            if (!_plan.Sequences.Add((s.Schema, s.Name))) continue;
            if (await RelationKindOnTargetAsync(s.Schema, s.Name, ct) == 'S')
            {
                _plan.Sequences.Remove((s.Schema, s.Name));
                continue;
            }
            await EnsureSchemaAsync(s.Schema, ct);
            _plan.AddSequence($"CREATE SEQUENCE {s.QualifiedName} AS {s.Type} {s.Options}");
            if (s.OwnerKind == "a" && columns.FirstOrDefault(c => c.Number == s.OwnerColumn) is { } owner)
                _plan.AddAfter($"ALTER SEQUENCE {s.QualifiedName} OWNED BY {root.QualifiedName}.{Sql.Ident(owner.Name)}");
            if (s.LastValue is { } last)
                _plan.AddAfter(string.Create(CultureInfo.InvariantCulture, $"SELECT pg_catalog.setval({Sql.Literal(s.QualifiedName)}, {last}, true)"));
        }

        var definitions = new List<string>();
        foreach (var c in columns)
        {
            var d = Sql.Ident(c.Name) + " " + c.Type;
            if (c.Collation is not null) d += " COLLATE " + Sql.Qualified(c.CollationSchema!, c.Collation);
            if (c.Identity is "a" or "d")
            {
                d += c.Identity == "a" ? " GENERATED ALWAYS AS IDENTITY" : " GENERATED BY DEFAULT AS IDENTITY";
                if (sequences.FirstOrDefault(s => s.OwnerKind == "i" && s.OwnerColumn == c.Number) is { } seq)
                {
                    d += $" (SEQUENCE NAME {seq.QualifiedName} {seq.Options})";
                    if (seq.LastValue is { } last)
                        _plan.AddAfter(string.Create(CultureInfo.InvariantCulture, $"SELECT pg_catalog.setval({Sql.Literal(seq.QualifiedName)}, {last}, true)"));
                }
            }
            else if (c.Generated == "s" && c.Default is not null)
                d += $" GENERATED ALWAYS AS ({c.Default}) STORED";
            else if (c.Default is not null)
                d += " DEFAULT " + c.Default;
            if (c.NotNull) d += " NOT NULL";
            definitions.Add(d);
        }
        _plan.AddTable($"CREATE TABLE {root.QualifiedName} ({string.Join(", ", definitions)})"
                       + (root.PartitionKey is null ? "" : " PARTITION BY " + root.PartitionKey));
        _plan.Tables.Add((root.Schema, root.Name));

        foreach (var p in partitions)
        {
            _plan.AddTable($"CREATE TABLE {p.QualifiedName} PARTITION OF {Sql.Qualified(p.ParentSchema!, p.ParentName!)} {p.Bound}"
                           + (p.PartitionKey is null ? "" : " PARTITION BY " + p.PartitionKey));
            _plan.Tables.Add((p.Schema, p.Name));
        }

        // Constraints and indexes of the root are created once the partitions exist, so they reach every partition
        // with the names PostgreSQL gives them; a partition only gets what it has of its own.
        await PlanConstraintsAndIndexesAsync(root, isRoot: true, ct);
        foreach (var p in partitions)
            await PlanConstraintsAndIndexesAsync(p, isRoot: false, ct);
        foreach (var rel in partitions.Prepend(root))
        {
            var identity = rel.ReplicaIdentity switch
            {
                'f' => "FULL",
                'n' => "NOTHING",
                'i' when rel.IdentityIndex is not null => "USING INDEX " + Sql.Ident(rel.IdentityIndex),
                _ => null,
            };
            if (identity is not null)
                _plan.AddTable($"ALTER TABLE {rel.QualifiedName} REPLICA IDENTITY {identity}");
        }

        _plan.Actions.Add($"node {_sub.To}: table {root.Schema}.{root.Name} created from its definition on {_sub.From} (copy_schema" +
                          (partitions.Count > 0 ? $", with {partitions.Count} partition(s))" : ")"));
    }

    private static Relation ReadRelation(NpgsqlDataReader r) =>
        new(r.GetFieldValue<uint>(0), r.GetString(1), r.GetString(2), r.GetString(3)[0], r.GetString(4)[0],
            Str(r, 5), Str(r, 6), Str(r, 7), Str(r, 8), Str(r, 9));

    private async Task PlanConstraintsAndIndexesAsync(Relation rel, bool isRoot, CancellationToken ct)
    {
        // conparentid <> 0: cloned from a parent's constraint (partitions, and foreign keys towards partitions).
        var constraints = await QueryAsync("""
            SELECT k.conname, k.contype::text, pg_get_constraintdef(k.oid), fn.nspname, fc.relname
              FROM pg_constraint k
              LEFT JOIN pg_class fc ON fc.oid = k.confrelid
              LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
             WHERE k.conrelid = $1 AND k.conparentid = 0 AND ($2 OR k.conislocal) AND k.contype IN ('p', 'u', 'c', 'x', 'f')
             ORDER BY k.contype <> 'p', k.conname
            """, r => (Name: r.GetString(0), Type: r.GetString(1), Definition: r.GetString(2), RefSchema: Str(r, 3), RefTable: Str(r, 4)), ct, rel.Oid, isRoot);
        foreach (var k in constraints)
        {
            if (k.Type == "f")
                _plan.AddForeignKey(new SchemaCopyPlan.PendingForeignKey((rel.Schema, rel.Name), k.Name, k.Definition, (k.RefSchema!, k.RefTable!)));
            else
                _plan.AddTable($"ALTER TABLE {rel.QualifiedName} ADD CONSTRAINT {Sql.Ident(k.Name)} {k.Definition}");
        }

        // Indexes that back a constraint come with it; a partition's index attached to its parent's comes with the parent's.
        var indexes = await QueryAsync("""
            SELECT pg_get_indexdef(i.indexrelid)
              FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = $1
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
               AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
             ORDER BY ic.relname
            """, r => r.GetString(0), ct, rel.Oid);
        foreach (var def in indexes)
            _plan.AddTable(WithoutOnly(def));
    }

    /// <summary>
    /// pg_get_indexdef writes a partitioned table's index as <c>CREATE INDEX name ON ONLY table ...</c>; without
    /// ONLY, creating it also creates and attaches the partitions' indexes.
    /// </summary>
    internal static string WithoutOnly(string indexDef)
    {
        var i = indexDef.StartsWith("CREATE UNIQUE INDEX ", StringComparison.Ordinal) ? "CREATE UNIQUE INDEX ".Length
            : indexDef.StartsWith("CREATE INDEX ", StringComparison.Ordinal) ? "CREATE INDEX ".Length
            : -1;
        if (i < 0) return indexDef;
        // Skip the index name: a quoted identifier ("" inside stands for ") or a plain one.
        if (i < indexDef.Length && indexDef[i] == '"')
        {
            for (i++; i < indexDef.Length; i++)
            {
                if (indexDef[i] != '"') continue;
                if (i + 1 < indexDef.Length && indexDef[i + 1] == '"') { i++; continue; }
                i++;
                break;
            }
        }
        else
        {
            while (i < indexDef.Length && indexDef[i] != ' ') i++;
        }
        const string onOnly = " ON ONLY ";
        return string.CompareOrdinal(indexDef, i, onOnly, 0, onOnly.Length) == 0
            ? indexDef[..i] + " ON " + indexDef[(i + onOnly.Length)..]
            : indexDef;
    }

    // ------------------------------------------------------------------ schemas, collations, types

    private async Task EnsureSchemaAsync(string schema, CancellationToken ct)
    {
        if (_plan.Schemas.Contains(schema)) return;
        if (await ExistsOnTargetAsync("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", ct, schema))
            return;
        _plan.Schemas.Add(schema);
        _plan.AddSchema($"CREATE SCHEMA {Sql.Ident(schema)}");
        _plan.Actions.Add($"node {_sub.To}: schema {schema} created (copy_schema)");
    }

    private async Task EnsureCollationAsync(string schema, string name, string usedBy, CancellationToken ct)
    {
        if (await ExistsOnTargetAsync("""
            SELECT EXISTS (SELECT 1 FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
                            WHERE n.nspname = $1 AND c.collname = $2
                              AND c.collencoding IN (-1, (SELECT encoding FROM pg_database WHERE datname = current_database())))
            """, ct, schema, name))
            return;
        Problem($"collation {schema}.{name} (of {usedBy}) does not exist on {_sub.To}; create it there first (CREATE COLLATION)");
    }

    private sealed record TypeInfo(string Schema, string Name, char Kind, uint Element, bool IsArray, uint BaseType, string? BaseTypeName,
        bool NotNull, string? Default, char? RelationKind, string? Extension, string? CollationSchema, string? Collation)
    {
        public string QualifiedName => Sql.Qualified(Schema, Name);
    }

    /// <summary>Plans the creation of a user type a column uses when the target lacks it, after the types it is made of.</summary>
    private async Task EnsureTypeAsync(uint oid, CancellationToken ct)
    {
        if (oid < FirstNormalObjectId || !_visitedTypes.Add(oid)) return;
        var t = (await QueryAsync("""
            SELECT n.nspname, t.typname, t.typtype::text, t.typelem, t.typsubscript = 'array_subscript_handler'::regproc,
                   t.typbasetype, CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
                   t.typnotnull, pg_get_expr(t.typdefaultbin, 0), rc.relkind::text,
                   (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                     WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'),
                   cn.nspname, co.collname
              FROM pg_type t
              JOIN pg_namespace n ON n.oid = t.typnamespace
              LEFT JOIN pg_class rc ON rc.oid = t.typrelid
              LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
              LEFT JOIN pg_collation co ON t.typtype = 'd' AND co.oid = t.typcollation AND t.typcollation <> bt.typcollation
              LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
             WHERE t.oid = $1
            """, r => new TypeInfo(r.GetString(0), r.GetString(1), r.GetString(2)[0], r.GetFieldValue<uint>(3), r.GetBoolean(4),
                r.GetFieldValue<uint>(5), Str(r, 6), r.GetBoolean(7), Str(r, 8), r.IsDBNull(9) ? null : r.GetString(9)[0], Str(r, 10),
                Str(r, 11), Str(r, 12)), ct, oid)).Single();

        if (t.IsArray && t.Element != 0)
        {
            await EnsureTypeAsync(t.Element, ct);
            return;
        }
        var key = (t.Schema, t.Name);
        if (_plan.Types.Contains(key)) return;
        if (await ExistsOnTargetAsync("""
            SELECT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname = $2)
            """, ct, t.Schema, t.Name))
            return;
        if (t.Extension is not null)
        {
            Problem($"type {t.Schema}.{t.Name} comes from extension {t.Extension}, which is not installed there; run CREATE EXTENSION {Sql.Ident(t.Extension)} on {_sub.To}");
            return;
        }

        string statement;
        var after = new List<string>();
        switch (t.Kind)
        {
            case 'e':
                var labels = await QueryAsync("SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder", r => r.GetString(0), ct, oid);
                statement = $"CREATE TYPE {t.QualifiedName} AS ENUM ({string.Join(", ", labels.Select(Sql.Literal))})";
                break;

            case 'd':
                await EnsureTypeAsync(t.BaseType, ct);
                if (t.Collation is not null) await EnsureCollationAsync(t.CollationSchema!, t.Collation, $"domain {t.Schema}.{t.Name}", ct);
                statement = $"CREATE DOMAIN {t.QualifiedName} AS {t.BaseTypeName}"
                            + (t.Collation is null ? "" : " COLLATE " + Sql.Qualified(t.CollationSchema!, t.Collation))
                            + (t.Default is null ? "" : " DEFAULT " + t.Default)
                            + (t.NotNull ? " NOT NULL" : "");
                foreach (var (name, def) in await QueryAsync(
                             "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = $1 AND contype = 'c' ORDER BY conname",
                             r => (r.GetString(0), r.GetString(1)), ct, oid))
                    after.Add($"ALTER DOMAIN {t.QualifiedName} ADD CONSTRAINT {Sql.Ident(name)} {def}");
                break;

            case 'c' when t.RelationKind == 'c':
                var attributes = await QueryAsync("""
                    SELECT a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), cn.nspname, co.collname
                      FROM pg_type ty
                      JOIN pg_attribute a ON a.attrelid = ty.typrelid
                      JOIN pg_type at ON at.oid = a.atttypid
                      LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> at.typcollation
                      LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
                     WHERE ty.oid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attnum
                    """, r => (Name: r.GetString(0), Type: r.GetFieldValue<uint>(1), TypeName: r.GetString(2), CollSchema: Str(r, 3), Coll: Str(r, 4)), ct, oid);
                foreach (var a in attributes)
                {
                    await EnsureTypeAsync(a.Type, ct);
                    if (a.Coll is not null) await EnsureCollationAsync(a.CollSchema!, a.Coll, $"attribute {a.Name} of type {t.Schema}.{t.Name}", ct);
                }
                statement = $"CREATE TYPE {t.QualifiedName} AS ({string.Join(", ", attributes.Select(a =>
                    Sql.Ident(a.Name) + " " + a.TypeName + (a.Coll is null ? "" : " COLLATE " + Sql.Qualified(a.CollSchema!, a.Coll))))})";
                break;

            case 'c':
                Problem($"a column has the row type of table {t.Schema}.{t.Name}; create that table on {_sub.To} first");
                return;

            case 'r':
                var range = (await QueryAsync("""
                    SELECT r.rngsubtype, format_type(r.rngsubtype, NULL),
                           CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::regproc::text END,
                           r.rngcanonical <> 0, mn.nspname, mt.typname,
                           CASE WHEN NOT oc.opcdefault THEN quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END,
                           CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
                      FROM pg_range r
                      JOIN pg_type st ON st.oid = r.rngsubtype
                      JOIN pg_opclass oc ON oc.oid = r.rngsubopc JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
                      LEFT JOIN pg_type mt ON mt.oid = r.rngmultitypid LEFT JOIN pg_namespace mn ON mn.oid = mt.typnamespace
                      LEFT JOIN pg_collation co ON co.oid = r.rngcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
                     WHERE r.rngtypid = $1
                    """, r => (SubType: r.GetFieldValue<uint>(0), SubTypeName: r.GetString(1), Diff: Str(r, 2), Canonical: r.GetBoolean(3),
                        MultiSchema: Str(r, 4), Multi: Str(r, 5), OpClass: Str(r, 6), Collation: Str(r, 7)), ct, oid)).Single();
                if (range.Canonical)
                {
                    Problem($"range type {t.Schema}.{t.Name} has a canonical function (written in C); create the type on {_sub.To} first");
                    return;
                }
                await EnsureTypeAsync(range.SubType, ct);
                var options = new List<string> { "SUBTYPE = " + range.SubTypeName };
                if (range.OpClass is not null) options.Add("SUBTYPE_OPCLASS = " + range.OpClass);
                if (range.Collation is not null) options.Add("COLLATION = " + range.Collation);
                if (range.Diff is not null) options.Add("SUBTYPE_DIFF = " + range.Diff);
                if (range.Multi is not null) options.Add("MULTIRANGE_TYPE_NAME = " + Sql.Qualified(range.MultiSchema!, range.Multi));
                statement = $"CREATE TYPE {t.QualifiedName} AS RANGE ({string.Join(", ", options)})";
                break;

            default:
                Problem($"type {t.Schema}.{t.Name} is a {(t.Kind == 'b' ? "base type written in C" : $"type of kind '{t.Kind}'")}, which copy_schema cannot create; create it on {_sub.To} first");
                return;
        }

        await EnsureSchemaAsync(t.Schema, ct);
        _plan.Types.Add(key);
        _plan.AddType(statement);
        foreach (var s in after) _plan.AddType(s);
        _plan.Actions.Add($"node {_sub.To}: type {t.Schema}.{t.Name} created (copy_schema)");
    }

    // ------------------------------------------------------------------ helpers

    private async Task<char?> RelationKindOnTargetAsync(string schema, string name, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2", _target);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(name);
        return await cmd.ExecuteScalarAsync(ct) is string s ? s[0] : null;
    }

    private async Task<bool> ExistsOnTargetAsync(string sql, CancellationToken ct, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, _target);
        foreach (var a in args) cmd.Parameters.AddWithValue(a);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> map, CancellationToken ct, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, _origin, _tx);
        foreach (var a in args)
            cmd.Parameters.Add(a is uint oid ? new NpgsqlParameter { Value = oid, NpgsqlDbType = NpgsqlDbType.Oid } : new NpgsqlParameter { Value = a });
        var result = new List<T>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) result.Add(map(r));
        return result;
    }

    private static string? Str(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
}
