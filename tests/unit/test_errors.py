"""The platform's root error and how a lost server is reported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spanishgas.errors import PlatformError, ServiceUnavailable, service_call

pytestmark = pytest.mark.unit


def _raise(exc: BaseException) -> None:
    with service_call("Redis", "127.0.0.1:6390", "the next run copies again", clients=("redis",)):
        raise exc


def test_a_client_library_connection_failure_names_the_server_and_what_was_kept() -> None:
    import redis

    with pytest.raises(ServiceUnavailable) as caught:
        _raise(redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.\nmore"))
    message = str(caught.value)
    assert message.startswith("Redis at 127.0.0.1:6390 is unreachable or went away (Error 111 connecting")
    assert message.endswith("; the next run copies again") and "more" not in message
    assert isinstance(caught.value, PlatformError) and isinstance(caught.value.__cause__, redis.ConnectionError)


def test_other_errors_and_other_libraries_pass_through() -> None:
    import psycopg2

    with pytest.raises(ValueError):
        _raise(ValueError("a bug, not an outage"))
    # a Postgres failure inside a block that only speaks for Redis is not reported as Redis's
    with pytest.raises(psycopg2.OperationalError):
        _raise(psycopg2.OperationalError("server closed the connection unexpectedly"))


def test_mlflow_rest_failures_after_retries_count_as_unreachable() -> None:
    from mlflow.exceptions import MlflowException

    lost = MlflowException("API request to http://127.0.0.1:5999/api/2.0/mlflow/runs/create failed with exception x")
    server = ("The MLflow tracking server", "http://127.0.0.1:5999", "no alias moved")
    with (
        pytest.raises(ServiceUnavailable, match=r"The MLflow tracking server at http://127\.0\.0\.1:5999"),
        service_call(*server),
    ):
        raise lost
    missing = MlflowException("Registered model alias champion not found.")
    with pytest.raises(MlflowException, match="not found"), service_call(*server):
        raise missing


def test_the_command_line_reports_a_lost_server_in_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through the console script's entry point: exit code 1, the server named, no traceback."""
    from tests.conftest import free_port

    env = {
        "SPANISHGAS_PROFILE": "stack",
        "SPANISHGAS_DATA_ROOT": str(tmp_path),
        "SPANISHGAS_LAKE_URI": str(tmp_path / "lake"),
        "SPANISHGAS_POSTGRES__PORT": str(free_port()),  # nothing listens there
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "spanishgas.cli", "features", "materialize"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Postgres at 127.0.0.1:" in output and "unreachable or went away" in output, output
    assert "Traceback" not in output, output
