"""The platform's own errors: one root, so the command line reports any of them in one place (one red line,
exit code 1, no traceback), and a service outage told apart from bad input.

Every error a stage raises on purpose derives from :class:`PlatformError` (each also keeps the built-in
base it always had, so existing ``except ValueError`` code still works). :func:`service_call` turns the
client libraries' connection failures (psycopg2 and psycopg, redis-py, MLflow's REST client) into
:class:`ServiceUnavailable`, whose message says which server, where, and what state the stage left.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PlatformError(Exception):
    """Root of every error the platform raises on purpose; its message is written for the person running
    the stage."""


class ServiceUnavailable(PlatformError, ConnectionError):
    """A server a stage needs (Postgres, Redis, the MLflow tracking server) is unreachable or went away."""


def _connection_errors() -> tuple[type[BaseException], ...]:
    """The connection failures of the client libraries that are installed (imported only when one occurs)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import psycopg2

        found += [psycopg2.OperationalError, psycopg2.InterfaceError]
    except ImportError:  # pragma: no cover - part of the lock
        pass
    try:
        import psycopg

        found += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:  # pragma: no cover - part of the lock
        pass
    try:
        import redis.exceptions

        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - part of the lock
        pass
    try:
        import sqlalchemy.exc

        found += [sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError]
    except ImportError:  # pragma: no cover - part of the lock
        pass
    try:
        import requests.exceptions

        found += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:  # pragma: no cover - part of the lock
        pass
    return tuple(found)


def _is_mlflow_unreachable(exc: BaseException) -> bool:
    """MLflow's REST client wraps a refused or dropped connection, after its retries, in MlflowException."""
    if type(exc).__name__ != "MlflowException":
        return False
    text = str(exc)
    return "API request to" in text and ("failed with exception" in text or "Max retries exceeded" in text)


@contextmanager
def service_call(
    service: str, address: str, consequence: str, clients: tuple[str, ...] | None = None
) -> Iterator[None]:
    """Run a block that talks to ``service`` at ``address``; a connection failure inside it becomes
    :class:`ServiceUnavailable` saying ``consequence`` (what was kept, what to run next). With ``clients``
    (top-level module names such as ``("redis",)``), only those libraries' failures are taken as this
    service's, so a block that talks to two servers can name the right one."""
    try:
        yield
    except ServiceUnavailable:
        raise
    except Exception as exc:
        if not (isinstance(exc, _connection_errors()) or _is_mlflow_unreachable(exc)):
            raise
        if clients is not None and type(exc).__module__.split(".")[0] not in clients:
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(
            f"{service} at {address} is unreachable or went away ({detail}); {consequence}"
        ) from exc
