"""fsspec access shared by every engine step, so a local path and an s3:// URL take one code path."""

import functools
import mmap
import posixpath
from typing import TYPE_CHECKING, BinaryIO, cast

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import get_protocol

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

S3_PROTOCOLS = frozenset({"s3", "s3a"})
SESSION_OPTIONS = frozenset({"session", "profile"})  # options that choose the botocore session


def filesystem(url: str, storage_options: dict | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem and the protocol-less path behind ``url``; on S3, with the process's
    botocore session (``aws_session``) unless the options choose one (a session, a profile)."""
    options = storage_options or {}
    if get_protocol(url) in S3_PROTOCOLS and not SESSION_OPTIONS & options.keys():
        options = {**options, "session": aws_session()}
    return fsspec.core.url_to_fs(url, **options)


@functools.cache
def aws_session() -> "AioSession":
    """The botocore session of every S3 filesystem of this process.

    A session parses botocore's JSON descriptions of S3 (its API, endpoints and endpoint rules)
    when it makes its first client: about 0.1 s of CPU. s3fs makes a session per filesystem, so
    every run worker paid it again; one forked from a process that warmed this session
    (``warm_aws_session``) finds them parsed. A session holds no connection or thread: its
    clients do, and each s3fs filesystem makes its own. It keeps the credentials it resolved
    first, as each filesystem (which fsspec keeps for the process's life) did before.
    """
    from aiobotocore.session import AioSession

    return AioSession()


def warm_aws_session() -> None:
    """Parse what a new S3 client of ``aws_session`` reads, before any client is made."""
    session = aws_session()
    loader = session.get_component("data_loader")
    for model in ("service-2", "endpoint-rule-set-1"):
        loader.load_service_model("s3", model)
    for data in ("endpoints", "partitions", "_retry", "sdk-default-configuration"):
        loader.load_data(data)


def is_local(url: str, storage_options: dict | None = None) -> bool:
    return isinstance(filesystem(url, storage_options)[0], LocalFileSystem)


def join(url: str, *parts: str) -> str:
    return posixpath.join(url.rstrip("/"), *parts)


def read_range(fs: AbstractFileSystem, path: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of a file: one ranged GET on object stores, never the whole file."""
    if end <= start:
        return b""
    return cast(bytes, fs.cat_file(path, start=start, end=end))  # fsspec leaves it untyped: str or bytes


def file_version(fs: AbstractFileSystem, path: str) -> str:
    """``size:stamp``, which changes when the content does: the modification time and inode
    locally, the ETag (else the modification time) on object stores."""
    info = fs.info(path)
    stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
    return f"{info['size']}:{stamp}:{info.get('ino', '')}"


def map_range(path: str, start: int, end: int) -> memoryview:
    """Bytes [start, end) of a local file without a copy: a read-only memory map of the page
    cache. Only for the run's own scratch files: a mapped file that another process truncates
    kills the reader (SIGBUS)."""
    if end <= start:
        return memoryview(b"")
    aligned = start - start % mmap.ALLOCATIONGRANULARITY
    with open(path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), end - aligned, access=mmap.ACCESS_READ, offset=aligned)
    return memoryview(mapped)[start - aligned :]  # the map lives as long as a view of it


def map_ranges(fs: AbstractFileSystem, ranges: list[tuple[str, int, int]]) -> list[memoryview]:
    """Each (path, start, end) of the run's scratch: memory-mapped where local (``map_range``),
    else fetched all at once, one ranged GET each, the first error raised."""
    if isinstance(fs, LocalFileSystem):
        return [map_range(path, start, end) for path, start, end in ranges]
    wanted = [(path, start, end) for path, start, end in ranges if end > start]  # no GET for nothing
    paths, starts, ends = ([column[index] for column in wanted] for index in range(3))
    fetched = iter(fs.cat_ranges(paths, starts, ends, on_error="raise"))
    return [memoryview(next(fetched) if end > start else b"") for _, start, end in ranges]


def open_output(url: str, storage_options: dict | None = None) -> BinaryIO:
    """A new file at ``url`` opened for writing, its directory created first where needed."""
    fs, path = filesystem(url, storage_options)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    return cast(BinaryIO, fs.open(path, "wb"))  # fsspec types open() for text modes too


def write_bytes(url: str, chunks, storage_options: dict | None = None) -> None:
    """Write ``chunks`` (bytes-like) to a new file at ``url``."""
    with open_output(url, storage_options) as out:
        for chunk in chunks:
            out.write(chunk)


def remove_tree(url: str, storage_options: dict | None = None) -> None:
    fs, path = filesystem(url, storage_options)
    if fs.exists(path):
        fs.rm(path, recursive=True)
