"""Arrow I/O shared by the ETL's Arrow tasks and the lake reader: the file system and path of a lake
location (a local folder or an S3 bucket), the S3 settings as values a Spark task can carry, and one Arrow
column as a single array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spanishgas.lake import lake_scheme

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow import fs as pafs

    from spanishgas.settings import S3Settings


def lake_filesystem(uri: str, s3: S3Settings | None = None) -> tuple[pafs.FileSystem, str]:
    """An Arrow file system and the path on it for a lake location (a local folder or ``s3a://``)."""
    from pyarrow import fs as pafs

    if lake_scheme(uri) == "s3":
        if s3 is None:
            raise ValueError(f"{uri}: S3 settings are needed to write there")
        endpoint_url = s3.endpoint_url.rstrip("/")
        scheme, _, endpoint = endpoint_url.partition("://") if "://" in endpoint_url else ("https", "", endpoint_url)
        filesystem = pafs.S3FileSystem(
            access_key=s3.access_key_id,
            secret_key=s3.secret_access_key.get_secret_value(),
            endpoint_override=endpoint,
            scheme=scheme,
            region=s3.region,
        )
        return filesystem, uri.split("://", 1)[1]
    if uri.startswith("file://"):
        uri = uri.removeprefix("file://")
    return pafs.LocalFileSystem(), uri


def s3_values(s3: S3Settings | None) -> dict[str, str] | None:
    """S3 settings as plain values a Spark task can carry (the secret in clear: tasks need it)."""
    if s3 is None:
        return None
    return {**s3.model_dump(), "secret_access_key": s3.secret_access_key.get_secret_value()}


def s3_settings(values: dict[str, str] | None) -> S3Settings | None:
    """The settings back from :func:`s3_values`, inside a task."""
    from spanishgas.settings import S3Settings

    return S3Settings(**values) if values else None


def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as one array, without a copy when it already is one chunk (``combine_chunks`` copies)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column
