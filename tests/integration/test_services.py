"""The services the stack profile needs answer on loopback (scripts/services.sh brings them up)."""

import psycopg2
import pytest
import redis

pytestmark = pytest.mark.integration


def test_postgres_answers(postgres_dsn: str) -> None:
    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_redis_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping() is True


def test_processes_starting_at_once_create_and_configure_a_database_without_failing(postgres_dsn: str) -> None:
    """The API's workers start together and each makes sure the feature store's database exists with its
    settings: concurrent ALTER DATABASE used to fail one of them ("tuple concurrently updated")."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from spanishgas.postgres import create_database
    from spanishgas.settings import PostgresSettings, Settings

    params = dict(part.split("=", 1) for part in postgres_dsn.split())
    settings = Settings(postgres=PostgresSettings(host=params["host"], port=int(params["port"]), user=params["user"]))
    for _ in range(3):
        database = f"spanishgas_race_{uuid.uuid4().hex[:8]}"
        try:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda name: create_database(settings, name, {"enable_nestloop": "off"}), [database] * 4))
            with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                    " WHERE d.datname = %s",
                    (database,),
                )
                assert cur.fetchone()[0] == ["enable_nestloop=off"]
        finally:
            admin = psycopg2.connect(postgres_dsn)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.close()
