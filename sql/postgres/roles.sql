-- Least-privilege roles for scorer, run once per database by an administrator:
--
--   psql "postgres://admin@db/analytics" -f sql/postgres/roles.sql
--   psql "postgres://admin@db/analytics" -c "ALTER ROLE scorer_writer PASSWORD '...'"
--   psql "postgres://admin@db/analytics" -c "GRANT scorer_analyst TO alice"
--
-- scorer_writer: the role scorer logs in as (DATABASE_URL). It is no superuser and cannot create
--   roles or databases. It can connect to and create schemas in this database only (scorer
--   creates its ledger schema `scorer` and the schemas its jobs' tables name), and it owns what
--   it creates there: result tables, their partitions, staging tables, quarantines, views.
-- scorer_analyst: a group role for people and dashboards. It reads the ledger (`scorer.*`) and
--   the result tables and `_latest` views of jobs that list it in `output.readers`; it cannot
--   write, drop, or read a staging table, a date partition directly or a quarantine (which holds
--   raw input ids).
--
-- Idempotent: running it again changes nothing.
\set ON_ERROR_STOP on

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scorer_writer') THEN
    CREATE ROLE scorer_writer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scorer_analyst') THEN
    CREATE ROLE scorer_analyst NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
  END IF;
END
$$;

-- Nothing for anybody by default in this database's public schema (PostgreSQL 15's default too).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT, CREATE ON DATABASE :"DBNAME" TO scorer_writer;
GRANT CONNECT ON DATABASE :"DBNAME" TO scorer_analyst;

-- The ledger's schema, owned by the writer, so the analyst's grants can follow its tables.
CREATE SCHEMA IF NOT EXISTS scorer AUTHORIZATION scorer_writer;
ALTER SCHEMA scorer OWNER TO scorer_writer;
GRANT USAGE ON SCHEMA scorer TO scorer_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA scorer TO scorer_analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE scorer_writer IN SCHEMA scorer
  GRANT SELECT ON TABLES TO scorer_analyst;
-- Schemas the writer creates for results: the analyst may look inside (each table still needs
-- its grant, which scorer gives to output.readers on the table and its _latest view only).
ALTER DEFAULT PRIVILEGES FOR ROLE scorer_writer GRANT USAGE ON SCHEMAS TO scorer_analyst;
