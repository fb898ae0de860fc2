"""Read published lake tables without a Spark session.

The feature load, training, scoring and serving stages only read a few small gold tables, so they use
Arrow's file systems (a local folder, or S3 for ``s3a://`` lakes) instead of paying for a JVM. The layout
and the publication rule are the ones :mod:`spanishgas.lake` writes: only runs with a marker under
``<layer>/_published/`` are visible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanishgas.lake import OBJECT_STORE, LakeError, PublishedRuns, lake_scheme

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyarrow import fs as pafs

    from spanishgas.settings import Settings


class LakeReader(PublishedRuns):
    """Published runs and tables of the lake at ``root`` (a folder or an ``s3a://bucket/prefix`` URI)."""

    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None) -> None:
        from pyarrow import fs as pafs

        if lake_scheme(root) == OBJECT_STORE:
            if filesystem is None:
                raise LakeError(f"cannot read {root}: pass an Arrow file system for it (LakeReader.from_settings)")
            self.fs, self.root = filesystem, root.split("://", 1)[1].rstrip("/")
        else:
            self.fs = filesystem or pafs.LocalFileSystem()
            self.root = str(Path(root.removeprefix("file://")).resolve())

    @classmethod
    def from_settings(cls, settings: Settings) -> LakeReader:
        """The lake of ``settings``, with an S3 file system built from ``settings.s3`` when it is remote."""
        from spanishgas.etl.arrow_io import lake_filesystem

        root = str(settings.lake_uri)
        if settings.lake_is_local:
            return cls(root)
        filesystem, _ = lake_filesystem(root, settings.s3)
        return cls(root, filesystem)

    def path(self, *parts: str) -> str:
        """Join parts under the lake root."""
        return "/".join([self.root, *[p.strip("/") for p in parts]])

    def published_runs(self, layer: str) -> list[str]:
        """Published run ids of a layer, oldest first."""
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.path(layer, "_published"), allow_not_found=True))
        return sorted(Path(i.path).name.removesuffix(".json") for i in infos if i.path.endswith(".json"))

    def manifest(self, layer: str, run_id: str) -> dict[str, Any]:
        """The manifest of a published run (refuses runs that are not published)."""
        marker = self.path(layer, "_published", f"{run_id}.json")
        try:
            with self.fs.open_input_stream(marker) as stream:
                return json.loads(stream.read().decode("utf-8"))
        except FileNotFoundError as exc:
            raise LakeError(f"{layer} run {run_id} is not published (no {marker})") from exc

    def run_ids(self, layer: str) -> list[str]:
        """Every run of a layer that wrote a folder, published or not, oldest first."""
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.path(layer, "runs"), allow_not_found=True))
        return sorted(Path(i.path).name for i in infos if i.type == pafs.FileType.Directory)

    def run_manifest(self, layer: str, run_id: str) -> dict[str, Any] | None:
        """What a run recorded in its folder (failed runs too), or None when it recorded nothing."""
        try:
            with self.fs.open_input_stream(self.path(layer, "runs", run_id, "_manifest.json")) as stream:
                return json.loads(stream.read().decode("utf-8"))
        except FileNotFoundError:
            return None

    def read_table(
        self, layer: str, run_id: str, table: str, columns: list[str] | None = None, filter: Any = None
    ) -> pa.Table:
        """One published table as an Arrow table (``filter``: an Arrow dataset expression on its rows)."""
        import pyarrow.dataset as ds

        self.manifest(layer, run_id)
        dataset = ds.dataset(self.path(layer, "runs", run_id, table), format="parquet", filesystem=self.fs)
        return dataset.to_table(columns=columns, filter=filter)

    def column_names(self, layer: str, run_id: str, table: str) -> list[str]:
        """The columns of a run's table, read from its Parquet footers only."""
        import pyarrow.dataset as ds

        return ds.dataset(self.path(layer, "runs", run_id, table), format="parquet", filesystem=self.fs).schema.names

    def write_run(self, layer: str, run_id: str, tables: dict[str, pd.DataFrame], manifest: dict[str, Any]) -> str:
        """Write a run's tables as ``runs/<run_id>/<name>.parquet`` and its manifest, unpublished (readers
        see none of it until :meth:`publish_run`). Returns the run folder."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.path(layer, "runs", run_id)
        self.fs.create_dir(folder, recursive=True)
        for name, frame in tables.items():
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False), f"{folder}/{name}.parquet", filesystem=self.fs
            )
        self._write_whole(f"{folder}/_manifest.json", json.dumps(manifest, indent=2, default=str).encode())
        return folder

    def publish_run(self, layer: str, run_id: str, manifest: dict[str, Any]) -> None:
        """Write the run's publication marker: from now on readers see it."""
        self.fs.create_dir(self.path(layer, "_published"), recursive=True)
        marker = self.path(layer, "_published", f"{run_id}.json")
        self._write_whole(marker, json.dumps(manifest, indent=2, default=str).encode())

    def publish_tables(self, layer: str, run_id: str, tables: dict[str, pd.DataFrame], manifest: dict[str, Any]) -> str:
        """Write a run's tables, then its publication marker (readers only see published runs, so a run that
        fails half-way publishes nothing). Returns the run folder."""
        folder = self.write_run(layer, run_id, tables, manifest)
        self.publish_run(layer, run_id, manifest)
        return folder

    def _write_whole(self, path: str, data: bytes) -> None:
        """Write a small file so that readers see all of it or nothing: an object store's PUT is atomic; a
        local file is written under a temporary name and renamed (a process killed mid-write leaves only the
        temporary file, which no reader lists)."""
        from pyarrow import fs as pafs

        if not isinstance(self.fs, pafs.LocalFileSystem):
            with self.fs.open_output_stream(path) as out:
                out.write(data)
            return
        staging = f"{path}.{os.getpid()}.partial"
        with self.fs.open_output_stream(staging) as out:
            out.write(data)
        self.fs.move(staging, path)
