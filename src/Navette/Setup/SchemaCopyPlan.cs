using Microsoft.Extensions.Logging;
using Npgsql;

namespace Navette.Setup;

/// <summary>
/// What <c>copy_schema</c> creates on one target node: the tables of its subscriptions that are missing there,
/// and the schemas, types and sequences they need, as DDL in dependency order. Built during the checks
/// (<see cref="SchemaCopier"/>), tried once in a transaction that is rolled back, then run for real in one transaction.
/// </summary>
internal sealed class SchemaCopyPlan(string node)
{
    private readonly List<string> _schemas = new();
    private readonly List<string> _types = new();
    private readonly List<string> _sequences = new();
    private readonly List<string> _tables = new();
    private readonly List<string> _after = new();
    private readonly List<PendingForeignKey> _foreignKeys = new();

    /// <summary>A foreign key kept only when the table it references is created by the same plan.</summary>
    internal sealed record PendingForeignKey((string Schema, string Name) Table, string ConstraintName, string Definition, (string Schema, string Name) Referenced);

    public string Node => node;

    /// <summary>Replicated tables this plan creates (partition roots and plain tables) → origin node and its columns.</summary>
    public Dictionary<(string Schema, string Name), (string From, List<TableColumn> Columns)> Roots { get; } = new();

    /// <summary>Every relation this plan creates (roots and partitions).</summary>
    public HashSet<(string Schema, string Name)> Tables { get; } = new();

    public HashSet<string> Schemas { get; } = new(StringComparer.Ordinal);
    public HashSet<(string Schema, string Name)> Types { get; } = new();
    public HashSet<(string Schema, string Name)> Sequences { get; } = new();

    /// <summary>What the plan does, one line each, for <c>navette apply</c>'s output.</summary>
    public List<string> Actions { get; } = new();

    /// <summary>True once a problem made the plan incomplete: it is then neither tried nor run.</summary>
    public bool Broken { get; set; }

    public bool IsEmpty => Roots.Count == 0 && _schemas.Count == 0 && _types.Count == 0;

    public void AddSchema(string statement) => _schemas.Add(statement);
    public void AddType(string statement) => _types.Add(statement);
    public void AddSequence(string statement) => _sequences.Add(statement);
    public void AddTable(string statement) => _tables.Add(statement);
    public void AddAfter(string statement) => _after.Add(statement);
    public void AddForeignKey(PendingForeignKey fk) => _foreignKeys.Add(fk);

    /// <summary>The statements in the order they run: schemas, types, sequences, tables, ownership and values, foreign keys.</summary>
    public List<string> Statements(ILogger? log)
    {
        var result = new List<string>(_schemas);
        result.AddRange(_types);
        result.AddRange(_sequences);
        result.AddRange(_tables);
        result.AddRange(_after);
        foreach (var fk in _foreignKeys)
        {
            if (Tables.Contains(fk.Referenced))
                result.Add($"ALTER TABLE {Sql.Qualified(fk.Table.Schema, fk.Table.Name)} ADD CONSTRAINT {Sql.Ident(fk.ConstraintName)} {fk.Definition}");
            else
                log?.LogWarning("copy_schema on node {Node}: foreign key {Constraint} of {Schema}.{Table} is not created: it references {RefSchema}.{RefTable}, which copy_schema does not create",
                    node, fk.ConstraintName, fk.Table.Schema, fk.Table.Name, fk.Referenced.Schema, fk.Referenced.Name);
        }
        return result;
    }

    /// <summary>
    /// Runs the plan in one transaction on <paramref name="target"/>; commits only when <paramref name="commit"/>,
    /// otherwise rolls back (the dry run made while checking). Returns the failure, or null.
    /// </summary>
    public async Task<string?> ExecuteAsync(NpgsqlConnection target, bool commit, ILogger log, CancellationToken ct)
    {
        await using var tx = await target.BeginTransactionAsync(ct);
        // The statements were generated with only pg_catalog on the path, so every other name in them is schema-qualified.
        await using (var cmd = new NpgsqlCommand("SET LOCAL search_path = pg_catalog", target, tx))
            await cmd.ExecuteNonQueryAsync(ct);
        foreach (var statement in Statements(commit ? log : null))
        {
            log.LogDebug("copy_schema on node {Node}: {Statement}", node, statement);
            try
            {
                await using var cmd = new NpgsqlCommand(statement, target, tx);
                await cmd.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException e)
            {
                await tx.RollbackAsync(ct);
                return $"node {node}: copy_schema cannot create the missing tables: {e.SqlState} {e.MessageText}{(e.Detail is { Length: > 0 } d ? $" ({d})" : "")}; failing statement: {statement}";
            }
        }
        if (commit)
            await tx.CommitAsync(ct);
        else
            await tx.RollbackAsync(ct);
        return null;
    }
}
