namespace Navette.Catalog;

/// <summary>
/// The versioned migrations of the <c>navette</c> schema. Append only: a released step is never edited,
/// a change is a new step, so every node can be brought from any version to the latest.
/// </summary>
internal static class CatalogMigrations
{
    internal sealed record Step(int Version, string Description, string Sql);

    internal static readonly IReadOnlyList<Step> Steps =
    [
        new(1, "subscriptions, fences, copy progress", """
            CREATE TABLE navette.subscription (
                name             text PRIMARY KEY,
                origin_node      text NOT NULL,
                sets             text[] NOT NULL,
                forward          boolean NOT NULL DEFAULT false,
                state            text NOT NULL CHECK (state IN ('initializing','copying','streaming','stopped','failed')),
                consistent_lsn   pg_lsn,
                last_commit_lsn  pg_lsn,
                last_commit_time timestamptz,
                txns_applied     bigint NOT NULL DEFAULT 0,
                rows_applied     bigint NOT NULL DEFAULT 0,
                rows_per_second  double precision NOT NULL DEFAULT 0,
                error            text,
                error_at         timestamptz,
                updated_at       timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE navette.subscription IS 'One row per subscription this node receives; written by the apply worker.';

            CREATE TABLE navette.fence (
                id         uuid PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now(),
                node       text NOT NULL
            );
            COMMENT ON TABLE navette.fence IS 'In-stream markers for navette wait: a row written on an origin is applied on its replicas after everything committed before it.';

            CREATE TABLE navette.copy_progress (
                subscription text NOT NULL,
                table_name   text NOT NULL,
                rows_copied  bigint NOT NULL DEFAULT 0,
                bytes_copied bigint NOT NULL DEFAULT 0,
                started_at   timestamptz,
                finished_at  timestamptz,
                PRIMARY KEY (subscription, table_name)
            );

            CREATE VIEW navette.subscription_status AS
            SELECT s.name, s.origin_node, s.sets, s.state, s.error, s.error_at,
                   s.last_commit_lsn, s.last_commit_time,
                   pg_replication_origin_progress('navette_' || s.name, false) AS origin_progress,
                   s.txns_applied, s.rows_applied, s.rows_per_second, s.updated_at
              FROM navette.subscription s;
            """),
        new(2, "indexes deferred during an initial copy", """
            CREATE TABLE navette.copy_deferred_index (
                subscription text NOT NULL,
                table_name   text NOT NULL,
                name         text NOT NULL,
                definition   text NOT NULL,
                PRIMARY KEY (subscription, table_name, name)
            );
            COMMENT ON TABLE navette.copy_deferred_index IS 'Indexes and constraints dropped for the initial copy of a subscription and not yet rebuilt: an interrupted copy rebuilds them from here.';
            """),
    ];

    internal static int LatestVersion => Steps[^1].Version;
}
