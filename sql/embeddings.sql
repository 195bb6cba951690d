-- Load the trainer's embeddings into pgvector the lab's way: the aws_s3 extension reads the CSVs straight from S3.
--
--   psql "host=<vector_db_host> port=5432 dbname=postgres user=postgres" \
--        -v bucket=<artifacts bucket> [-v region=us-east-1] [-v prefix=embeddings/] -f sql/embeddings.sql
--
-- The stack does the same with its embeddings-loader Lambda after every deploy (lambda_src/loader.py); use this
-- script when you load by hand. It does what the loader does, in SQL: each CSV goes into a fresh table, the
-- primary key and HNSW indexes are built after the import, and both tables are swapped in one transaction, so
-- queries see the old embeddings or the new ones, never an empty or half-loaded table. Any error (wrong dimension,
-- NaN, duplicate id, missing file) rolls everything back.
-- On RDS the DB instance needs an IAM role for the s3Import feature that may s3:GetObject on the artifacts bucket.

\set ON_ERROR_STOP on

\if :{?bucket}
\else
  \warn 'embeddings.sql: the psql variable "bucket" is not set.'
  \warn 'Run: psql ... -v bucket=<artifacts bucket> [-v region=us-east-1] -f sql/embeddings.sql'
  DO $$ BEGIN RAISE EXCEPTION 'psql variable bucket is not set: pass -v bucket=<artifacts bucket name>'; END $$;
\endif
\if :{?region}
\else
  \set region us-east-1
\endif
\if :{?prefix}
\else
  \set prefix embeddings/
\endif

-- aws_s3 provides table_import_from_s3; where it is already there (or stood in for), it is used as it is.
SELECT to_regprocedure('aws_s3.table_import_from_s3(text,text,text,text,text,text)') IS NULL AS need_aws_s3 \gset
\if :need_aws_s3
  CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE;
\endif
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS embedding_sources (
    table_name text PRIMARY KEY,
    source_uri text NOT NULL,
    source_version text NOT NULL,
    row_count bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    hnsw_search jsonb
);
ALTER TABLE embedding_sources ADD COLUMN IF NOT EXISTS hnsw_search jsonb;

BEGIN;
-- The loader Lambda takes the same lock: a manual load and an automatic one never interleave.
SELECT pg_advisory_xact_lock(8243104040581541221);

DROP TABLE IF EXISTS item_emb_loading;
DROP TABLE IF EXISTS user_emb_loading;
CREATE TABLE item_emb_loading (id varchar NOT NULL, embedding vector(32) NOT NULL);
CREATE TABLE user_emb_loading (id int NOT NULL, embedding vector(32) NOT NULL);

SELECT aws_s3.table_import_from_s3('item_emb_loading', 'id,embedding', '(format csv, header true)',
                                   :'bucket', :'prefix' || 'item_embeddings.csv', :'region');
SELECT aws_s3.table_import_from_s3('user_emb_loading', 'id,embedding', '(format csv, header true)',
                                   :'bucket', :'prefix' || 'user_embeddings.csv', :'region');

-- Never swap in nothing: an empty file would otherwise leave the recommender without items.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM item_emb_loading) OR NOT EXISTS (SELECT 1 FROM user_emb_loading) THEN
        RAISE EXCEPTION 'an embeddings file has no rows; nothing was loaded';
    END IF;
END $$;

-- Keys and indexes after the import: one bulk build is far faster than maintaining them row by row.
SET LOCAL maintenance_work_mem = '256MB';
ALTER TABLE item_emb_loading ADD CONSTRAINT item_emb_loading_pkey PRIMARY KEY (id);
ALTER TABLE user_emb_loading ADD CONSTRAINT user_emb_loading_pkey PRIMARY KEY (id);
CREATE INDEX item_emb_loading_embedding_ip_idx ON item_emb_loading
    USING hnsw (embedding vector_ip_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX item_emb_loading_embedding_cos_idx ON item_emb_loading
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX user_emb_loading_embedding_cos_idx ON user_emb_loading
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- The swap: readers block for the few milliseconds of these renames, then see the new tables.
DROP TABLE IF EXISTS item_emb;
DROP TABLE IF EXISTS user_emb;
ALTER TABLE item_emb_loading RENAME TO item_emb;
ALTER TABLE user_emb_loading RENAME TO user_emb;
ALTER TABLE item_emb RENAME CONSTRAINT item_emb_loading_pkey TO item_emb_pkey;
ALTER TABLE user_emb RENAME CONSTRAINT user_emb_loading_pkey TO user_emb_pkey;
ALTER INDEX item_emb_loading_embedding_ip_idx RENAME TO item_emb_embedding_ip_idx;
ALTER INDEX item_emb_loading_embedding_cos_idx RENAME TO item_emb_embedding_cos_idx;
ALTER INDEX user_emb_loading_embedding_cos_idx RENAME TO user_emb_embedding_cos_idx;

-- Record what was loaded; the version says "by hand", so the loader Lambda reloads from the ETag on its next run.
-- hnsw_search is cleared: this script does not measure recall, so the queries fall back to ef_search 200 (the value
-- 1M random vectors need) until the loader reloads and calibrates the new indexes.
INSERT INTO embedding_sources (table_name, source_uri, source_version, row_count, hnsw_search)
SELECT 'item_emb', 's3://' || :'bucket' || '/' || :'prefix' || 'item_embeddings.csv', 'psql', count(*), NULL::jsonb
FROM item_emb
UNION ALL
SELECT 'user_emb', 's3://' || :'bucket' || '/' || :'prefix' || 'user_embeddings.csv', 'psql', count(*), NULL::jsonb
FROM user_emb
ON CONFLICT (table_name) DO UPDATE
    SET source_uri = EXCLUDED.source_uri, source_version = EXCLUDED.source_version,
        row_count = EXCLUDED.row_count, loaded_at = now(), hnsw_search = NULL;
COMMIT;

SELECT 'item_emb' AS table_name, count(*) AS rows FROM item_emb
UNION ALL
SELECT 'user_emb', count(*) FROM user_emb;
