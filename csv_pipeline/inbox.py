"""What is in the inbox: CSV files by file key, each with a version that changes with its content.

A file key is the path relative to the inbox (``2026/11/plays.csv``); it names the Dagster
partition. The version is the S3 ETag, or ``<size>-<mtime_ns>`` on a local disk, so a file
rewritten under the same name is seen as new. No Dagster imports: the CLI uses this too.
"""

import os
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


def list_inbox(inbox: str) -> dict[str, str]:
    """Every ``.csv`` file under ``inbox`` (recursively), as ``{file_key: version}``."""
    fs, root = fsspec.core.url_to_fs(inbox)
    if not fs.exists(root):
        return {}
    root = root.rstrip("/")
    return {
        path[len(root) + 1 :]: _version(fs, path, info)
        for path, info in fs.find(root, detail=True).items()
        if info["type"] == "file" and is_csv(path)
    }


def file_version(url: str) -> str:
    """The content version of one file."""
    fs, path = fsspec.core.url_to_fs(url)
    return _version(fs, path, fs.info(path))


def is_csv(path: str) -> bool:
    return path.lower().endswith(".csv")


def _version(fs: fsspec.AbstractFileSystem, path: str, info: dict[str, Any]) -> str:
    if isinstance(fs, LocalFileSystem):
        return f"{info['size']}-{os.stat(path).st_mtime_ns}"
    return str(info["ETag"]).strip('"')
