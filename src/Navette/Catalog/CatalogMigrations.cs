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
        new(3, "multi-master: conflict log, tombstones, re-sends, applied end positions", """
            ALTER TABLE navette.subscription ADD COLUMN last_end_lsn pg_lsn;
            COMMENT ON COLUMN navette.subscription.last_end_lsn IS 'End of the last applied source transaction, written with its rows: read under a snapshot, it says exactly which of the origin''s transactions that snapshot holds.';

            CREATE TABLE navette.conflict_log (
                id                 bigserial PRIMARY KEY,
                logged_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
                subscription       text NOT NULL,
                conflict_type      text NOT NULL,
                table_name         text NOT NULL,
                key                jsonb NOT NULL,
                local_tuple        jsonb,
                remote_tuple       jsonb,
                local_origin       text,
                local_commit_time  timestamptz,
                remote_origin      text NOT NULL,
                remote_commit_time timestamptz NOT NULL,
                remote_commit_lsn  pg_lsn NOT NULL,
                policy             text NOT NULL,
                outcome            text NOT NULL,
                decision           text CHECK (decision IN ('incoming', 'local', 'skip')),
                resolved_at        timestamptz
            );
            CREATE INDEX ON navette.conflict_log (logged_at);
            CREATE INDEX ON navette.conflict_log (subscription) WHERE outcome = 'aborted';
            COMMENT ON TABLE navette.conflict_log IS 'Every conflict this node resolved while applying a subscription, with both rows; written in the transaction that resolved it.';

            CREATE TABLE navette.tombstone (
                table_oid  oid NOT NULL,
                key        jsonb NOT NULL,
                deleted_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (table_oid, key)
            );
            COMMENT ON TABLE navette.tombstone IS 'Recently deleted keys of tables whose conflicts are handled; the row''s xmin carries the delete''s commit time and origin, so a late update of a deleted row loses to a later delete.';

            CREATE FUNCTION navette.record_tombstones() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                EXECUTE format('INSERT INTO navette.tombstone (table_oid, key) SELECT %s, jsonb_build_array(%s) FROM navette_old '
                               'ON CONFLICT (table_oid, key) DO UPDATE SET deleted_at = excluded.deleted_at', TG_RELID, TG_ARGV[0]);
                RETURN NULL;
            END
            $fn$;
            COMMENT ON FUNCTION navette.record_tombstones() IS 'Statement trigger (AFTER DELETE, old rows as navette_old) recording the deleted keys; its argument is the key column list.';

            CREATE TABLE navette.rebroadcast (
                id          bigserial PRIMARY KEY,
                schema_name text NOT NULL,
                table_name  text NOT NULL,
                key_columns text[] NOT NULL,
                key_values  text[] NOT NULL,
                row_xmin    xid,
                columns     text[],
                row_values  text[],
                queued_at   timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE navette.rebroadcast IS 'Rows (row_xmin set) or deletes (columns set) this node won a conflict with and must send again so the node that lost comes back in line.';
            """),
        new(4, "in-stream compare and repair requests", """
            CREATE TABLE navette.compare_request (
                run           uuid NOT NULL,
                chunk         int NOT NULL,
                subscription  text NOT NULL,
                schema_name   text NOT NULL,
                table_name    text NOT NULL,
                key_columns   text[] NOT NULL,
                columns       text[] NOT NULL,
                text_columns  boolean[] NOT NULL,
                lower_bound   text[],
                upper_bound   text[],
                bucket_bounds text[],
                detail        boolean NOT NULL,
                row_count     bigint NOT NULL,
                snap_xmin     xid8 NOT NULL,
                snap_xmax     xid8 NOT NULL,
                snap_xip      xid8[] NOT NULL,
                snap_lsn      pg_lsn NOT NULL,
                created_at    timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run, chunk)
            );
            COMMENT ON TABLE navette.compare_request IS 'In-stream marker: a key range of a table summarised (by bucket, or row by row) on the origin; the subscription''s applier computes the same on the target at the point of the stream where it arrives.';

            CREATE TABLE navette.compare_result (
                run            uuid NOT NULL,
                chunk          int NOT NULL,
                subscription   text NOT NULL,
                row_count      bigint NOT NULL,
                buckets        int[],
                bucket_rows    bigint[],
                bucket_hashes  bigint[],
                bucket_hashes2 bigint[],
                keys           text[],
                hashes         bigint[],
                unsettled      int NOT NULL,
                computed_at    timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run, chunk)
            );
            COMMENT ON TABLE navette.compare_result IS 'What the applier found for a compare request; unsettled counts the rows of the range changed by transactions the origin''s summary could not see but that the stream applied before it.';

            CREATE TABLE navette.repair_request (
                run          uuid NOT NULL,
                batch        int NOT NULL,
                subscription text NOT NULL,
                schema_name  text NOT NULL,
                table_name   text NOT NULL,
                key_columns  text[] NOT NULL,
                columns      text[] NOT NULL,
                keys         text[] NOT NULL,
                row_values   text[] NOT NULL,
                present      boolean[] NOT NULL,
                snap_xmin    xid8 NOT NULL,
                snap_xmax    xid8 NOT NULL,
                snap_xip     xid8[] NOT NULL,
                snap_lsn     pg_lsn NOT NULL,
                created_at   timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run, batch)
            );
            COMMENT ON TABLE navette.repair_request IS 'In-stream marker: rows as the origin holds them (present) or keys it does not have (absent), which the applier writes or deletes on the target at that point of the stream.';

            CREATE TABLE navette.repair_result (
                run          uuid NOT NULL,
                batch        int NOT NULL,
                subscription text NOT NULL,
                written      int NOT NULL,
                deleted      int NOT NULL,
                skipped      text[] NOT NULL,
                computed_at  timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run, batch)
            );
            """),
        new(5, "compare: the buckets a detail request lists", """
            ALTER TABLE navette.compare_request ADD COLUMN wanted_buckets int[];
            COMMENT ON COLUMN navette.compare_request.wanted_buckets IS 'For a detail request cut at bucket_bounds: the buckets whose rows are listed (all when null).';
            """),
        // 6 was reserved for synchronous replication, which needed no catalog change: it is never used.
        new(7, "role changes: fenced nodes", """
            CREATE TABLE navette.fenced_node (
                node              text PRIMARY KEY,
                new_origin        text NOT NULL,
                lost_subscription text NOT NULL,
                sets              text[] NOT NULL,
                divergence_lsn    pg_lsn NOT NULL,
                fenced_at         timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE navette.fenced_node IS 'Origins lost at a failover, on every surviving node: what the new origin had applied of them (divergence_lsn, in the lost node''s WAL) and the subscription whose slot on the lost node still holds what came after, for navette rejoin.';
            """),
        new(8, "schema changes in the stream: navette execute and captured DDL", """
            CREATE TABLE navette.ddl (
                id            bigserial PRIMARY KEY,
                kind          text NOT NULL CHECK (kind IN ('execute', 'auto', 'join')),
                set_name      text,
                command       text NOT NULL,
                command_tags  text[] NOT NULL DEFAULT '{}',
                object_types  text[] NOT NULL DEFAULT '{}',
                object_schemas text[] NOT NULL DEFAULT '{}',
                object_names  text[] NOT NULL DEFAULT '{}',
                search_path   text NOT NULL,
                role_name     text NOT NULL DEFAULT current_user,
                xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
                statement_at  timestamptz NOT NULL DEFAULT statement_timestamp(),
                created_at    timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE navette.ddl IS 'In-stream marker: a schema change (a navette execute script for set_name, or a command captured by the event trigger with the objects it touched) replayed by every subscription it concerns where it arrives in the stream.';

            CREATE TABLE navette.table_join (
                subscription text NOT NULL,
                schema_name  text NOT NULL,
                table_name   text NOT NULL,
                skip_until   pg_lsn NOT NULL,
                rows_copied  bigint NOT NULL,
                joined_at    timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (subscription, schema_name, table_name)
            );
            COMMENT ON TABLE navette.table_join IS 'Tables that joined a running subscription: copied under a snapshot taken at skip_until, so the stream''s changes to them up to there are already in the copy and passed over.';

            CREATE TABLE navette.ddl_skip (
                subscription text NOT NULL,
                origin_node  text NOT NULL,
                ddl_id       bigint NOT NULL,
                skipped_at   timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (subscription, ddl_id)
            );
            COMMENT ON TABLE navette.ddl_skip IS 'Schema changes an operator told a subscription not to replay (navette skip-ddl).';

            CREATE TABLE navette.ddl_publication (
                publication  text NOT NULL,
                schema_like  text NOT NULL,
                table_like   text NOT NULL,
                PRIMARY KEY (publication, schema_like, table_like)
            );
            COMMENT ON TABLE navette.ddl_publication IS 'The table patterns of the sets with ddl: auto this node sends (as LIKE patterns): a table created here that matches one joins its publication at once (kept by navette apply).';

            CREATE FUNCTION navette.capture_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
            DECLARE
                r record;
                tags text[] := '{}';
                types text[] := '{}';
                schemas text[] := '{}';
                names text[] := '{}';
                rel record;
                p record;
            BEGIN
                -- navette execute scripts and replayed commands are carried by their own marker.
                IF coalesce(current_setting('navette.ddl_replaying', true), '') = 'on' THEN RETURN; END IF;
                IF TG_EVENT = 'sql_drop' THEN
                    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE original AND NOT is_temporary LOOP
                        CONTINUE WHEN r.schema_name IS NULL OR r.schema_name = 'navette';
                        tags := tags || TG_TAG; types := types || r.object_type; schemas := schemas || r.schema_name;
                        names := names || coalesce(r.object_name, r.address_names[array_upper(r.address_names, 1)]);
                    END LOOP;
                ELSE
                    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
                        CONTINUE WHEN r.in_extension OR r.schema_name IS NULL OR r.schema_name = 'navette' OR r.schema_name LIKE 'pg\_temp%';
                        IF r.classid = 'pg_catalog.pg_class'::regclass THEN
                            -- An index, a sequence or a column is the business of its table.
                            SELECT n.nspname, coalesce(t.relname, c.relname) AS relname, c.relkind INTO rel
                              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                              LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
                              LEFT JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
                             WHERE c.oid = r.objid;
                            CONTINUE WHEN NOT FOUND;
                            IF r.command_tag = 'CREATE TABLE' AND rel.relkind IN ('r', 'p') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid = r.objid) THEN
                                -- A new table matching a set's pattern is published from its first row: no gap to copy.
                                PERFORM pg_catalog.set_config('navette.ddl_replaying', 'on', true);
                                FOR p IN SELECT DISTINCT d.publication FROM navette.ddl_publication d
                                          WHERE rel.nspname LIKE d.schema_like AND rel.relname LIKE d.table_like
                                            AND EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = d.publication) LOOP
                                    EXECUTE format('ALTER PUBLICATION %I ADD TABLE %I.%I', p.publication, rel.nspname, rel.relname);
                                END LOOP;
                                PERFORM pg_catalog.set_config('navette.ddl_replaying', 'off', true);
                            END IF;
                            tags := tags || r.command_tag; types := types || 'table'::text; schemas := schemas || rel.nspname::text; names := names || rel.relname::text;
                        ELSE
                            tags := tags || r.command_tag; types := types || r.object_type; schemas := schemas || r.schema_name; names := names || r.object_identity;
                        END IF;
                    END LOOP;
                END IF;
                IF cardinality(tags) = 0 THEN RETURN; END IF;
                -- One query string can hold several commands (and a DROP fires both events): it is recorded once, with every object.
                UPDATE navette.ddl SET command_tags = command_tags || tags, object_types = object_types || types,
                                       object_schemas = object_schemas || schemas, object_names = object_names || names
                 WHERE xid = pg_current_xact_id() AND statement_at = statement_timestamp() AND command = current_query() AND kind = 'auto';
                IF NOT FOUND THEN
                    INSERT INTO navette.ddl (kind, command, command_tags, object_types, object_schemas, object_names, search_path)
                    VALUES ('auto', current_query(), tags, types, schemas, names, current_setting('search_path'));
                END IF;
            END
            $$;
            CREATE TABLE navette.sequence_values (
                id            bigserial PRIMARY KEY,
                schemas       text[] NOT NULL,
                names         text[] NOT NULL,
                last_values   bigint[] NOT NULL,
                owner_schemas text[] NOT NULL,
                owner_tables  text[] NOT NULL,
                created_at    timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE navette.sequence_values IS 'In-stream marker: the last value of this node''s sequences (with the table owning each, if any); a subscription raises its target''s sequences of the sets it carries to them where it arrives.';

            CREATE FUNCTION navette.raise_sequence(seq regclass, v bigint) RETURNS boolean LANGUAGE plpgsql AS $$
            DECLARE
                lv bigint;
                called boolean;
                step bigint;
            BEGIN
                SELECT seqincrement INTO step FROM pg_catalog.pg_sequence WHERE seqrelid = seq;
                EXECUTE format('SELECT last_value, is_called FROM %s', seq) INTO lv, called;
                IF (step > 0 AND v > lv) OR (step < 0 AND v < lv) OR (v = lv AND NOT called) THEN
                    PERFORM pg_catalog.setval(seq, v, true);
                    RETURN true;
                END IF;
                RETURN false;
            END
            $$;
            COMMENT ON FUNCTION navette.raise_sequence(regclass, bigint) IS 'Moves a sequence forward (in its own direction) to a value its origin used; never back.';

            COMMENT ON FUNCTION navette.capture_ddl() IS 'Event trigger function of sets with ddl: auto: records each DDL command run on this node, with the objects it touched, as an in-stream marker (navette.ddl).';
            """),
    ];

    internal static int LatestVersion => Steps[^1].Version;
}
