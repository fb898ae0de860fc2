"""The lake: where each layer's runs live, and how a run is published.

Layout under the lake root (a local folder or an ``s3a://`` URI):

    <layer>/runs/<run_id>/<table>/...        Parquet written by the run (never overwritten)
    <layer>/runs/<run_id>/_manifest.json     what the run did (rows, reasons, checksums, gates, timings)
    <layer>/_published/<run_id>.json         written last, only when every gate passed

Readers only ever look at published runs, so a run that fails a gate publishes nothing, whatever it had
written. Writing one small marker is atomic on a local disk and on S3 alike, which a directory rename is
not. File operations go through Hadoop's FileSystem API, so the same code serves both.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanishgas.errors import PlatformError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAYERS = ("bronze", "silver", "gold")
# The lake's location is a folder (a path or file://) or an S3 bucket: s3a:// is Hadoop's name for it
# (Spark's jobs), s3:// Arrow's; both name the same objects. Every caller asks lake_scheme().
LOCAL, OBJECT_STORE = "local", "s3"
OBJECT_STORE_SCHEMES = ("s3a", "s3")


class LakeError(PlatformError, RuntimeError):
    """A run or table that should exist does not."""


def lake_scheme(uri: str) -> str:
    """``"local"`` for a folder (a path or ``file://``), ``"s3"`` for an S3 bucket (``s3a://``, ``s3://``)."""
    if "://" not in uri or uri.startswith("file://"):
        return LOCAL
    scheme = uri.split("://", 1)[0]
    if scheme in OBJECT_STORE_SCHEMES:
        return OBJECT_STORE
    raise LakeError(f"the lake cannot live at {uri}: use a folder or an s3a:// bucket (scheme {scheme!r})")


def new_run_id(layer: str) -> str:
    """A sortable, unique-enough run id such as ``bronze-20241231T101500123Z``."""
    return f"{layer}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')[:-3]}Z"


@dataclass
class LayerRun:
    """What one bronze, silver or gold run wrote: its id, its manifest (not published yet) and its tables
    (name -> path)."""

    run_id: str
    manifest: dict[str, Any]
    tables: dict[str, str]


def manifest_header(layer: str, run_id: str, started: datetime, **inputs: str) -> dict[str, Any]:
    """The fields every layer's manifest starts with: the layer, the run, what it read (``raw_dir``,
    ``bronze_run``, ``silver_run``), and when it started and finished."""
    return {
        "layer": layer,
        "run_id": run_id,
        **inputs,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }


class PublishedRuns:
    """What readers of published runs share, whatever file system they use."""

    def path(self, *parts: str) -> str:
        """Join parts under the lake root."""
        raise NotImplementedError

    def published_runs(self, layer: str) -> list[str]:
        """Published run ids of a layer, oldest first."""
        raise NotImplementedError

    def latest_run(self, layer: str) -> str:
        """The newest published run of a layer."""
        runs = self.published_runs(layer)
        if not runs:
            raise LakeError(f"no published {layer} run under {self.path(layer)}; run `spanishgas {layer}` first")
        return runs[-1]


class Lake(PublishedRuns):
    """Paths and publication markers of the lake at ``root``."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/") if "://" in root else str(Path(root).resolve())
        jvm = spark.sparkContext._jvm
        self._jvm = jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    # ---- paths
    def path(self, *parts: str) -> str:
        """Join parts under the lake root."""
        return "/".join([self.root, *[p.strip("/") for p in parts]])

    def run_path(self, layer: str, run_id: str) -> str:
        """Folder of one run of a layer."""
        return self.path(layer, "runs", run_id)

    def table_path(self, layer: str, run_id: str, table: str) -> str:
        """Folder of one table written by a run."""
        return self.path(layer, "runs", run_id, table)

    # ---- file system
    def _fs_path(self, path: str) -> tuple[Any, Any]:
        p = self._jvm.org.apache.hadoop.fs.Path(path)
        return p.getFileSystem(self._conf), p

    def exists(self, path: str) -> bool:
        """Whether a file or folder exists."""
        fs, p = self._fs_path(path)
        return bool(fs.exists(p))

    def write_text(self, path: str, text: str) -> None:
        """Write (replace) a small UTF-8 text file so readers see all of it or nothing: on an object store
        one PUT is atomic; elsewhere it is written under a temporary name and renamed, so a process killed
        mid-write leaves only a ``.partial`` file that no reader lists."""
        fs, p = self._fs_path(path)
        if lake_scheme(self.root) == OBJECT_STORE:
            self._create(fs, p, text)
            return
        staging = self._jvm.org.apache.hadoop.fs.Path(f"{path}.{os.getpid()}.partial")
        self._create(fs, staging, text)
        if fs.exists(p):
            fs.delete(p, False)
        if not fs.rename(staging, p):
            raise LakeError(f"could not move {staging} to {path}")

    @staticmethod
    def _create(fs: Any, p: Any, text: str) -> None:
        out = fs.create(p, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()

    def read_text(self, path: str) -> str:
        """Read a small UTF-8 text file."""
        fs, p = self._fs_path(path)
        if not fs.exists(p):
            raise LakeError(f"{path} does not exist")
        stream = fs.open(p)
        try:
            scanner = self._jvm.java.util.Scanner(stream, "UTF-8").useDelimiter("\\A")
            return str(scanner.next()) if scanner.hasNext() else ""
        finally:
            stream.close()

    def list_names(self, path: str) -> list[str]:
        """Names directly under a folder (empty when it does not exist)."""
        fs, p = self._fs_path(path)
        if not fs.exists(p):
            return []
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(p))

    def delete(self, path: str) -> None:
        """Delete a file or folder recursively (used for failed staging output only)."""
        fs, p = self._fs_path(path)
        if fs.exists(p):
            fs.delete(p, True)

    # ---- manifests and publication
    def write_manifest(self, layer: str, run_id: str, manifest: dict[str, Any]) -> None:
        """Record what a run did, next to its output."""
        self.write_text(self.path(layer, "runs", run_id, "_manifest.json"), json.dumps(manifest, indent=2, default=str))

    def publish(self, layer: str, run_id: str, manifest: dict[str, Any]) -> None:
        """Make a run visible to readers. Call only after every gate passed."""
        self.write_manifest(layer, run_id, manifest)
        self.write_text(self.path(layer, "_published", f"{run_id}.json"), json.dumps(manifest, indent=2, default=str))

    def published_runs(self, layer: str) -> list[str]:
        """Published run ids of a layer, oldest first."""
        return [n.removesuffix(".json") for n in self.list_names(self.path(layer, "_published")) if n.endswith(".json")]

    def manifest(self, layer: str, run_id: str) -> dict[str, Any]:
        """The manifest of a published run."""
        marker = self.path(layer, "_published", f"{run_id}.json")
        if not self.exists(marker):
            raise LakeError(f"{layer} run {run_id} is not published (no {marker})")
        return json.loads(self.read_text(marker))

    def read_table(self, layer: str, run_id: str, table: str) -> Any:
        """A published table as a DataFrame."""
        self.manifest(layer, run_id)  # refuses unpublished runs
        return self.spark.read.parquet(self.table_path(layer, run_id, table))


class RunWriter:
    """Writes one run's tables (never overwriting) and remembers where each went and how long it took."""

    def __init__(self, lake: Lake, layer: str, run_id: str) -> None:
        self.lake, self.layer, self.run_id = lake, layer, run_id
        self.tables: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    def write(self, name: str, df: Any) -> str:
        """Write ``df`` as table ``name`` of the run; return its path."""
        t0 = time.perf_counter()
        path = self.lake.table_path(self.layer, self.run_id, name)
        df.write.mode("errorifexists").parquet(path)
        self.tables[name] = path
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        return path
