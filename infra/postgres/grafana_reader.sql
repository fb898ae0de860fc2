-- A login for Grafana that may only read: the monitoring tables the monitor writes into the platform
-- database (monitoring_*). Run by the postgres image on an empty volume (in the platform database), and
-- by the observability test on its own database. Safe to run again.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana') THEN
    CREATE ROLE grafana LOGIN;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO grafana', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO grafana;
-- Tables the monitor creates later (as postgres) are readable too.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
