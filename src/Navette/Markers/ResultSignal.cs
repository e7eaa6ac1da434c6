using Npgsql;

namespace Navette.Markers;

/// <summary>
/// How a requester learns that the applier wrote the result of a compare or repair request: the applier notifies in
/// the apply transaction (delivered at its commit), the requester's session on the target listens and reads the result
/// tables again when woken, or after <see cref="Recheck"/> at the latest.
/// </summary>
internal static class ResultSignal
{
    public const string Channel = "navette_marker_result";
    private static readonly TimeSpan Recheck = TimeSpan.FromMilliseconds(500);

    public static async Task ListenAsync(NpgsqlConnection target, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"LISTEN {Channel}", target);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The statement the applier runs after writing a result.</summary>
    public const string NotifySql = $"SELECT pg_notify('{Channel}', '')";

    /// <summary>Returns when a result was (probably) written, or after a short while.</summary>
    public static Task WaitAsync(NpgsqlConnection target, CancellationToken ct) => target.WaitAsync(Recheck, ct);
}
