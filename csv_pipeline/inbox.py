"""What is in the inbox: CSV files by file key, each with a version that changes with its content.

A file key is the path relative to the inbox (``2026/11/plays.csv``); it names the Dagster
partition and the outbox folder of the file's results. The version is the S3 ETag, or
``<size>-<mtime_ns>`` on a local disk, so a file rewritten under the same name is seen as new.
On S3 the listing also says when the object was last written, so a re-put of the same bytes can
be told from a file merely seen again. Every entry also has the time it arrived in the inbox, by
the store's own clock, so the sensor can tell the few recent entries from the many it handled
long ago. No Dagster imports: the CLI uses this too.
"""

import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem

from csv_pipeline.engine.storage import filesystem

# The longest file or folder name most file systems take: the outbox and Dagster's step storage
# hold a folder or file named after each part of the key.
MAX_NAME_BYTES = 255
SYMLINK = "it is a symbolic link, and links in the inbox are never followed"
NOT_REGULAR = "it is not a regular file"


@dataclass(frozen=True)
class InboxFile:
    """One listed file: its content ``version``, on S3 when that copy was ``written``, and its
    size in bytes as listed (None when only its stamp is known)."""

    version: str
    written: str = ""  # empty where the version already changes with every write (a local mtime)
    size: int | None = field(default=None, compare=False)

    @property
    def stamp(self) -> str:
        """Both in one string (no version holds ``@``): what the sensor's cursor remembers."""
        return f"{self.version}@{self.written}" if self.written else self.version

    @classmethod
    def from_stamp(cls, stamp: str) -> "InboxFile":
        version, _, written = stamp.partition("@")
        return cls(version, written)


@dataclass(frozen=True)
class Inbox:
    """The ``.csv`` files that can be processed, the ones skipped with the reason why, and when
    each of them ``arrived`` (seconds since the epoch, by the store's clock): on S3 the object's
    LastModified, locally the inode change time, which a move into the inbox sets (the mtime
    it keeps may be days old)."""

    files: dict[str, InboxFile]
    skipped: dict[str, str]
    arrived: dict[str, float]


def list_inbox(inbox: str) -> Inbox:
    """Every ``.csv`` file under ``inbox`` (recursively), and the entries that are skipped.

    Symbolic links (to files or folders) are never followed, so nothing outside the inbox is read;
    a file whose key breaks a rule of :func:`file_key_problem` is skipped too.
    """
    fs, root = filesystem(inbox)
    listed = Inbox({}, {}, {})
    if not fs.exists(root):
        return listed
    root = root.rstrip("/")
    found = cast(dict[str, dict[str, Any]], fs.find(root, detail=True))  # fsspec types it as the list
    for path, info in found.items():
        add_entry(listed, fs, path[len(root) + 1 :], path, info)
    return listed


def add_entry(inbox: Inbox, fs: fsspec.AbstractFileSystem, key: str, path: str, info: dict[str, Any]) -> None:
    """Put the entry at ``path`` (``key`` in the inbox, ``info`` as fsspec describes it) into
    ``inbox``: a file, a skipped entry with the reason, or nothing when it is no ``.csv`` file."""
    if info.get("islink"):
        if is_csv(key) or os.path.isdir(path):
            inbox.skipped[key] = SYMLINK
    elif is_csv(key):
        problem = NOT_REGULAR if info["type"] != "file" else file_key_problem(key)
        if problem:
            inbox.skipped[key] = problem
        else:
            inbox.files[key] = _listed(fs, path, info)
    if key in inbox.files or key in inbox.skipped:
        inbox.arrived[key] = _arrived(fs, path, info)


def file_version(url: str) -> str:
    """The content version of one file."""
    fs, path = filesystem(url)
    return _listed(fs, path, fs.info(path)).version


def is_csv(path: str) -> bool:
    return path.lower().endswith(".csv")


def file_key_problem(file_key: str) -> str | None:
    """Why ``file_key`` cannot name a partition and an outbox folder, or None if it can.

    Dagster refuses ``...`` (its partition range separator) and control characters in partition
    keys; ``..``, ``.`` or empty parts would lead the outbox path elsewhere; a name longer than
    ``MAX_NAME_BYTES`` cannot be a folder name; hidden names are how upload tools write partial
    files. Spaces, other punctuation and any other Unicode text are fine.
    """
    try:
        file_key.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(unicodedata.category(char) == "Cc" for char in file_key):
        return (
            "its name holds a control character (such as a tab or a line break), "
            "which Dagster refuses in a partition key"
        )
    if "..." in file_key:
        return "its name holds '...', which Dagster reads as a range of partition keys"
    parts = file_key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "its path has an empty, '.' or '..' part, which could lead outside the inbox or the outbox"
    if any(part.startswith(".") for part in parts):
        return "its name or a folder's starts with '.', as upload tools name their partial files"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        return (
            f"a name in its path is longer than {MAX_NAME_BYTES} bytes, more than a folder name in the outbox can hold"
        )
    return None


def shown(file_key: str) -> str:
    """``file_key`` as it can be printed in a message or log line: quoted and escaped if need be."""
    return file_key if file_key.isprintable() else repr(file_key)


def symlink_problem(inbox: str, file_key: str) -> str | None:
    """``SYMLINK`` if the file or a folder on its way down from ``inbox`` is a symbolic link.

    The run checks this again before it reads, so a link put in place after the sensor listed
    the file, or a partition key typed into the UI, cannot lead it outside the inbox.
    """
    fs, root = filesystem(inbox)
    if not isinstance(fs, LocalFileSystem):
        return None  # object stores have no links
    path = root.rstrip("/")
    for part in file_key.split("/"):
        path = f"{path}/{part}"
        if os.path.islink(path):
            return SYMLINK
    return None


def _listed(fs: fsspec.AbstractFileSystem, path: str, info: dict[str, Any]) -> InboxFile:
    if isinstance(fs, LocalFileSystem):
        return InboxFile(f"{info['size']}-{os.stat(path).st_mtime_ns}", size=info["size"])
    written = info.get("LastModified")
    return InboxFile(str(info["ETag"]).strip('"'), f"{written.timestamp():.6f}" if written else "", info["size"])


def _arrived(fs: fsspec.AbstractFileSystem, path: str, info: dict[str, Any]) -> float:
    if isinstance(fs, LocalFileSystem):
        return os.lstat(path).st_ctime
    written = info.get("LastModified")
    return written.timestamp() if written else 0.0
