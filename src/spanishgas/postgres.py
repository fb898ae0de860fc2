"""Postgres helpers shared by the stack profile's writers (the feature store's offline table, the scored
customers table): connections, database creation, and replacing a table in one transaction by COPY."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from spanishgas.errors import service_call

if TYPE_CHECKING:
    from spanishgas.settings import Settings


# A transaction that dies with its server was never committed: what a stage replaces keeps its old rows.
NOTHING_COMMITTED = "nothing was committed, so every table keeps its previous rows: run the stage again once it answers"


def unavailable(settings: Settings, database: str) -> Any:
    """The context that reports a lost Postgres connection as ServiceUnavailable, naming the server."""
    pg = settings.postgres
    return service_call("Postgres", f"{pg.host}:{pg.port} (database {database})", NOTHING_COMMITTED)


def connect(settings: Settings, database: str) -> Any:
    """A psycopg2 connection to ``database`` on the configured server."""
    import psycopg2

    pg = settings.postgres
    with unavailable(settings, database):
        return psycopg2.connect(
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password.get_secret_value() or None,
            dbname=database,
            sslmode=pg.sslmode,
            connect_timeout=5,
        )


@contextmanager
def transaction(settings: Settings, database: str) -> Iterator[Any]:
    """A connection holding one transaction: committed on success, rolled back on error, always closed; a
    server lost on the way is reported as ServiceUnavailable."""
    conn = connect(settings, database)
    try:
        with unavailable(settings, database), conn:
            yield conn
    finally:
        conn.close()


def create_database(settings: Settings, database: str, parameters: dict[str, str] | None = None) -> None:
    """Create ``database`` when it does not exist and set its per-database ``parameters``."""
    from psycopg2 import sql

    conn = connect(settings, "postgres")
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with unavailable(settings, "postgres"), conn.cursor() as cur:
            # Several processes start at once (the API's workers): one at a time here, or two ALTERs of the
            # same database fail with "tuple concurrently updated" and a worker does not start.
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"spanishgas.create_database.{database}",))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            cur.execute(
                "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                " WHERE d.datname = %s AND s.setrole = 0",
                (database,),
            )
            row = cur.fetchone()
            current = set(row[0] or []) if row else set()
            for name, value in (parameters or {}).items():
                if f"{name}={value}" in current:
                    continue  # already set: no write, so concurrent starts do not contend at all
                cur.execute(
                    sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                        sql.Identifier(database), sql.Identifier(name), sql.Literal(value)
                    )
                )
    finally:
        conn.close()  # ends the session, and with it the advisory lock


def replace_table(
    settings: Settings,
    database: str,
    table: str,
    columns: list[tuple[str, str]],
    csv: IO[Any],
    index_columns: tuple[str, ...] = (),
    then: Callable[[Any], None] | None = None,
) -> None:
    """Load ``csv`` (no header, columns in order) with COPY into a staging table, then swap it for the live
    table in the same transaction, so readers see the old rows or the new ones, never a mix. ``then(cursor)``
    runs in that transaction after the swap (a log row that must appear with the table or not at all)."""
    from psycopg2 import sql

    ident = sql.Identifier
    staging, old = f"{table}__staging", f"{table}__previous"
    with transaction(settings, database) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(staging)))
        cur.execute(
            sql.SQL("CREATE TABLE {} ({})").format(
                ident(staging), sql.SQL(", ").join(sql.SQL("{} " + kind).format(ident(c)) for c, kind in columns)
            )
        )
        copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            ident(staging), sql.SQL(", ").join(ident(c) for c, _ in columns)
        )
        cur.copy_expert(copy.as_string(conn), csv)
        if index_columns:
            cur.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    ident(f"{table}_{uuid.uuid4().hex[:12]}_idx"),  # unique even for loads in the same second
                    ident(staging),
                    sql.SQL(", ").join(ident(c) for c in index_columns),
                )
            )
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(old)))
        cur.execute(sql.SQL("ALTER TABLE IF EXISTS {} RENAME TO {}").format(ident(table), ident(old)))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(staging), ident(table)))
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(old)))
        if then is not None:
            then(cur)
    # ANALYZE after the commit: the table is readable already, and statistics are not part of the swap
    with transaction(settings, database) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ANALYZE {}").format(ident(table)))
