namespace Navette.Cli.Demo;

/// <summary>How <see cref="LocalCluster.StopAsync"/> shuts the server down (pg_ctl -m).</summary>
internal enum ShutdownMode
{
    /// <summary>Wait for all clients to disconnect.</summary>
    Smart,

    /// <summary>Roll back open transactions, disconnect clients, checkpoint, stop.</summary>
    Fast,

    /// <summary>Quit at once without a checkpoint; the next start runs crash recovery.</summary>
    Immediate,
}

/// <summary>Settings for a throwaway <see cref="LocalCluster"/>.</summary>
internal sealed class LocalClusterOptions
{
    /// <summary>Database to create (if not "postgres") and to connect to.</summary>
    public string Database { get; set; } = "postgres";

    /// <summary>
    /// False (the default, for tests): fsync=off and full_page_writes=off, fast but not crash-safe
    /// against an OS crash. True: fsync=on, full_page_writes=on, synchronous_commit=on.
    /// A killed or immediately stopped server recovers its committed data either way (WAL is written
    /// to the OS at commit), only power loss / kernel crashes are not covered when false.
    /// </summary>
    public bool Durable { get; set; }

    /// <summary>Extra postgresql.conf settings (name → value); they override the defaults.</summary>
    public IDictionary<string, string> Settings { get; set; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Keep the data and socket directories when the cluster is disposed (it is still stopped).</summary>
    public bool Keep { get; set; }

    /// <summary>How long pg_ctl waits for start/stop (pg_ctl -t).</summary>
    public TimeSpan StartStopTimeout { get; set; } = TimeSpan.FromSeconds(60);
}
