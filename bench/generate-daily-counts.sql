-- Fills a migrated streaming database with :videos videos (creators
-- 1..1000) and their counts on 2026-11-20 and 2026-11-21, and marks every
-- count before now as written back. Used by daily-counts.sh and settle.sh:
--   psql -v videos=5000000 -v ON_ERROR_STOP=1 -f bench/generate-daily-counts.sql
INSERT INTO videos (id, creator_id, title, description, duration_seconds, created_at)
  SELECT g, 1 + g % 1000, 'video ' || g, '', 600, now() FROM generate_series(1, :videos) g;
SELECT setval(pg_get_serial_sequence('videos', 'id'), :videos);
-- Their month's partition, where daily_counts is partitioned (issue 19)
-- and the service did not make it (a machine whose clock is past it).
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
             WHERE c.relname = 'daily_counts') THEN
    CREATE TABLE IF NOT EXISTS daily_counts_p202611 PARTITION OF daily_counts
      FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
  END IF;
END $$;
-- The same counts both days, so the second day's counts before it are the
-- first day's (what the write-back and the import maintain).
INSERT INTO daily_counts (video_id, day, views, watch_seconds, ad_views, views_before, ad_views_before)
  SELECT g, d::date, 1 + (g::bigint * 7919) % 1000, 60 * (1 + (g::bigint * 7919) % 1000), (g::bigint * 104729) % 50,
         CASE WHEN d = '2026-11-21' THEN 1 + (g::bigint * 7919) % 1000 ELSE 0 END,
         CASE WHEN d = '2026-11-21' THEN (g::bigint * 104729) % 50 ELSE 0 END
  FROM generate_series(1, :videos) g, (VALUES ('2026-11-20'), ('2026-11-21')) AS days(d);
INSERT INTO watermarks (id, written_back_until) VALUES (1, now())
  ON CONFLICT (id) DO UPDATE SET written_back_until = excluded.written_back_until;
ANALYZE;
