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
