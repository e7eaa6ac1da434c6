using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace Navette.Capture;

/// <summary>
/// Reads a subscription's slot with pgoutput and turns the messages into whole
/// <see cref="SourceTransaction"/>s, written in commit order to a channel for the applier.
/// Owns the replication connection; the applier reports what it committed through <see cref="Confirm"/>.
/// </summary>
internal sealed class ChangeStream : IAsyncDisposable
{
    private readonly LogicalReplicationConnection _conn;
    private readonly string _slot;
    private readonly IReadOnlyList<string> _publications;
    private readonly bool _forward;
    private readonly ILogger _log;
    private readonly Dictionary<uint, SourceRelation> _relations = new();
    private long _confirmed;
    private readonly Lock _confirmLock = new();
    private volatile bool _inTransaction;
    private long _transactionsSeen;

    private ChangeStream(LogicalReplicationConnection conn, string slot, IReadOnlyList<string> publications, bool forward, ILogger log)
    {
        _conn = conn;
        _slot = slot;
        _publications = publications;
        _forward = forward;
        _log = log;
    }

    /// <summary>
    /// Settings the walsender formats values with; the applier (and the copy) parse them with the same ones, so
    /// neither node's own defaults matter. xmloption=content accepts documents and fragments alike (with
    /// "document" a fragment fails to load); lc_monetary=C makes money independent of the nodes' locales. Navette's sessions
    /// write on nodes kept read-only for their clients (see <see cref="Config.NodeConfig.WritableOption"/>).
    /// </summary>
    /// <remarks>
    /// jit=off: navette's statements are short and many (apply batches, compare ranges); a large row estimate makes
    /// PostgreSQL compile one with LLVM first, which took ~170 ms for a 50,000-row compare range that runs in 20 ms.
    /// </remarks>
    public const string SessionOptions =
        "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c timezone=UTC -c xmloption=content -c lc_monetary=C -c jit=off "
        + Config.NodeConfig.WritableOption;

    public static async Task<ChangeStream> OpenAsync(string connectionString, string subscription, IReadOnlyList<string> publications,
        bool forward, ILogger log, CancellationToken ct)
    {
        var csb = new Npgsql.NpgsqlConnectionStringBuilder(connectionString)
        {
            ApplicationName = Sql.ApplicationName(subscription),
            Options = SessionOptions,
        };
        var conn = new LogicalReplicationConnection(csb.ConnectionString)
        {
            WalReceiverStatusInterval = TimeSpan.FromSeconds(2),
            WalReceiverTimeout = TimeSpan.FromSeconds(60),
        };
        await conn.Open(ct);
        return new ChangeStream(conn, Sql.SlotName(subscription), publications, forward, log);
    }

    public LogicalReplicationConnection Connection => _conn;

    /// <summary>True when the last message read ended a transaction (nothing half-received).</summary>
    public bool BetweenTransactions => !_inTransaction;

    public long TransactionsSeen => Interlocked.Read(ref _transactionsSeen);

    public NpgsqlLogSequenceNumber LastReceived => _conn.LastReceivedLsn;

    /// <summary>Reports to the origin that everything up to <paramref name="lsn"/> is safe on the target (never moves back).</summary>
    public void Confirm(NpgsqlLogSequenceNumber lsn)
    {
        // Under one lock, so two callers (the applier and the idle timer) cannot report an older position last.
        lock (_confirmLock)
        {
            var v = (long)(ulong)lsn;
            if (Interlocked.Read(ref _confirmed) >= v) return;
            Interlocked.Exchange(ref _confirmed, v);
            _conn.SetReplicationStatus(lsn);
        }
    }

    public NpgsqlLogSequenceNumber ConfirmedLsn => new((ulong)Interlocked.Read(ref _confirmed));

    public Task SendStatusAsync(CancellationToken ct) => _conn.SendStatusUpdate(ct);

    /// <summary>Streams from <paramref name="startLsn"/> until cancelled or the connection fails.</summary>
    /// <param name="spillAbove">
    /// A transaction whose changes take more memory than this goes on in a temporary file (<see cref="SpilledChanges"/>),
    /// under <paramref name="spillDirectory"/> (the system's temporary directory when null).
    /// </param>
    public async Task RunAsync(NpgsqlLogSequenceNumber startLsn, ChannelWriter<SourceTransaction> output, CancellationToken ct,
        long spillAbove = long.MaxValue, string? spillDirectory = null, InflightLimit? inflight = null)
    {
        if (startLsn != NpgsqlLogSequenceNumber.Invalid)
            Confirm(startLsn);
        var slot = new PgOutputReplicationSlot(_slot);
        var options = new PgOutputReplicationOptions(_publications, PgOutputProtocolVersion.V1);

        List<RowChange>? changes = null;
        BeginMessage? begin = null;
        string? origin = null;
        long bytes = 0;
        long spilledBytes = 0;
        SpilledChanges? spill = null;

        try
        {
            await foreach (var msg in _conn.StartReplication(slot, options, ct, startLsn))
            {
                switch (msg)
                {
                    case BeginMessage b:
                        _inTransaction = true;
                        begin = b;
                        origin = null;
                        changes = new List<RowChange>();
                        bytes = 0;
                        spilledBytes = 0;
                        break;
                    case OriginMessage o:
                        origin = o.OriginName;
                        break;
                    case RelationMessage r:
                    {
                        // The walsender repeats Relation messages; keeping the same object when nothing changed keeps
                        // the applier's per-relation caches warm.
                        var rel = SourceRelation.From(r);
                        if (!_relations.TryGetValue(r.RelationId, out var known) || !known.SameShape(rel))
                            _relations[r.RelationId] = rel;
                        break;
                    }
                    case TypeMessage:
                        break;
                    case InsertMessage m:
                    {
                        var row = await ReadRowAsync(m.NewRow, ct);
                        bytes += row.ApproximateBytes;
                        changes!.Add(new RowChange { Kind = ChangeKind.Insert, Relation = Rel(m.Relation.RelationId), New = row });
                        break;
                    }
                    case FullUpdateMessage m:
                    {
                        var old = await ReadRowAsync(m.OldRow, ct);
                        var row = await ReadRowAsync(m.NewRow, ct);
                        bytes += old.ApproximateBytes + row.ApproximateBytes;
                        changes!.Add(new RowChange { Kind = ChangeKind.Update, Relation = Rel(m.Relation.RelationId), Old = old, New = row });
                        break;
                    }
                    case IndexUpdateMessage m:
                    {
                        var key = await ReadRowAsync(m.Key, ct);
                        var row = await ReadRowAsync(m.NewRow, ct);
                        bytes += key.ApproximateBytes + row.ApproximateBytes;
                        changes!.Add(new RowChange { Kind = ChangeKind.Update, Relation = Rel(m.Relation.RelationId), Old = key, New = row });
                        break;
                    }
                    case UpdateMessage m:
                    {
                        var row = await ReadRowAsync(m.NewRow, ct);
                        bytes += row.ApproximateBytes;
                        changes!.Add(new RowChange { Kind = ChangeKind.Update, Relation = Rel(m.Relation.RelationId), New = row });
                        break;
                    }
                    case KeyDeleteMessage m:
                    {
                        var key = await ReadRowAsync(m.Key, ct);
                        bytes += key.ApproximateBytes;
                        changes!.Add(new RowChange { Kind = ChangeKind.Delete, Relation = Rel(m.Relation.RelationId), Old = key });
                        break;
                    }
                    case FullDeleteMessage m:
                    {
                        var old = await ReadRowAsync(m.OldRow, ct);
                        bytes += old.ApproximateBytes;
                        changes!.Add(new RowChange { Kind = ChangeKind.Delete, Relation = Rel(m.Relation.RelationId), Old = old });
                        break;
                    }
                    case TruncateMessage m:
                    {
                        var rels = m.Relations.Select(r => Rel(r.RelationId)).ToArray();
                        changes!.Add(new RowChange
                        {
                            Kind = ChangeKind.Truncate, Relation = rels[0], TruncatedRelations = rels,
                            TruncateCascade = (m.Options & TruncateMessage.TruncateOptions.Cascade) != 0,
                            TruncateRestartIdentity = (m.Options & TruncateMessage.TruncateOptions.RestartIdentity) != 0,
                        });
                        break;
                    }
                    case CommitMessage c:
                    {
                        // Without forward, a transaction the source itself received by replication is not passed on:
                        // that is what keeps a cascade explicit and prevents loops.
                        var keep = _forward || origin is null;
                        if (spill is not null)
                        {
                            if (keep)
                            {
                                await spill.CompleteAsync(changes!, ct);
                                spilledBytes = bytes;
                                _log.LogInformation("transaction {Xid} committed at {Lsn}: {Changes} changes ({Size}) went to a spill file, above max_transaction_memory ({Limit})",
                                    begin?.TransactionXid ?? 0, c.CommitLsn, spill.Count, Config.ConfigUnits.FormatSize(spill.FileBytes), Config.ConfigUnits.FormatSize(spillAbove));
                            }
                            else
                            {
                                await spill.DisposeAsync();
                                spill = null;
                            }
                            changes = [];
                        }
                        var tx = new SourceTransaction
                        {
                            Xid = begin?.TransactionXid ?? 0,
                            CommitLsn = c.CommitLsn,
                            EndLsn = c.TransactionEndLsn,
                            CommitTime = c.TransactionCommitTimestamp,
                            OriginName = origin,
                            Changes = keep ? changes ?? [] : [],
                            Spilled = spill,
                            ApproximateBytes = keep ? bytes : 0,
                            MemoryBytes = keep ? bytes - spilledBytes : 0,
                        };
                        // From here the applier owns the file.
                        spill = null;
                        changes = null;
                        begin = null;
                        Interlocked.Increment(ref _transactionsSeen);
                        _inTransaction = false;
                        if (_log.IsEnabled(LogLevel.Trace))
                            _log.LogTrace("received transaction {Xid} committed at {Lsn} with {Changes} change(s), origin {Origin}", tx.Xid, tx.CommitLsn, tx.ChangeCount, origin ?? "local");
                        if (inflight is not null) await inflight.EnterAsync(tx.MemoryBytes, ct);
                        await output.WriteAsync(tx, ct);
                        break;
                    }
                    default:
                        _log.LogDebug("ignoring pgoutput message {Type}", msg.GetType().Name);
                        break;
                }
                if (changes is not null && bytes - spilledBytes > (spill is null ? spillAbove : Math.Min(spillAbove, SpillBlockBytes)))
                {
                    spill ??= SpilledChanges.Create(spillDirectory);
                    await spill.WriteAsync(changes, ct);
                    spilledBytes = bytes;
                }
            }
        }
        finally
        {
            // A transaction cut off by a stop or a broken connection: its file goes with it.
            if (spill is not null) await spill.DisposeAsync();
        }
    }

    /// <summary>Once spilling, changes go to the file in blocks of about this size.</summary>
    private const long SpillBlockBytes = 16L << 20;

    private SourceRelation Rel(uint id) =>
        _relations.TryGetValue(id, out var r) ? r : throw new InvalidOperationException($"pgoutput sent a change for relation {id} before describing it");

    private static async ValueTask<RowImage> ReadRowAsync(ReplicationTuple tuple, CancellationToken ct)
    {
        var row = new RowImageBuilder(tuple.NumColumns);
        await foreach (var value in tuple)
        {
            switch (value.Kind)
            {
                case TupleDataKind.Null:
                    row.AddNull();
                    break;
                case TupleDataKind.UnchangedToastedValue:
                    row.AddUnchangedToast();
                    break;
                default:
                    var text = await value.Get<string>(ct);
                    row.Add(text);
                    break;
            }
        }
        return row.Build();
    }

    public async ValueTask DisposeAsync() => await _conn.DisposeAsync();
}
