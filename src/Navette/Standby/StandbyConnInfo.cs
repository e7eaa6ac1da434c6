using System.Globalization;
using Navette.Config;
using Npgsql;

namespace Navette.Standby;

/// <summary>
/// The connection strings around a standby. They may carry the node's password: never print them (use
/// <see cref="ConnInfo.Redact"/>), and hand them to tools through <see cref="ConnInfo.WithoutPassword"/>.
/// </summary>
internal static class StandbyConnInfo
{
    /// <summary>How the standby reaches its primary (primary_conninfo, pg_basebackup, pg_rewind): the node's conninfo,
    /// named after the standby so pg_stat_replication on the primary shows which standby a walsender serves.</summary>
    public static string ToPrimary(NodeConfig primary, string standbyName) =>
        ConnInfo.With(primary.ConnInfo, [new("application_name", standbyName)]);

    /// <summary>How navette reaches the standby: the primary's conninfo (user, database, password, TLS) at the standby's host and port.</summary>
    public static string ToStandby(NodeConfig primary, StandbyConfig standby) =>
        ConnInfo.With(primary.ConnInfo,
        [
            new("host", standby.Host),
            new("hostaddr", null),
            new("port", standby.Port.ToString(CultureInfo.InvariantCulture)),
            new("target_session_attrs", null),
            new("load_balance_hosts", null),
        ]);

    /// <summary>An unpooled Npgsql connection string with a short connect timeout (status must not hang on a dead host).</summary>
    public static string Npgsql(string conninfo, int timeoutSeconds = 5) =>
        new NpgsqlConnectionStringBuilder(ConnInfo.ToNpgsql(conninfo)) { Pooling = false, Timeout = timeoutSeconds }.ConnectionString;

    public static async Task<NpgsqlConnection> OpenAsync(string conninfo, CancellationToken ct, int timeoutSeconds = 5)
    {
        var conn = new NpgsqlConnection(Npgsql(conninfo, timeoutSeconds));
        try
        {
            await conn.OpenAsync(ct);
            return conn;
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }
}
