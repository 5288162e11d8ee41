"""Random play-count CSV files for demos and benchmarks (``csv-pipeline demo-file``).

The default shape is the replaced system's demo data: ``Song,Date,Number of Plays``,
songs of 4 random lowercase letters, dates uniform from 1994-08-08 to today, plays
uniform in 1..100000, so almost every (Song, Date) pair is distinct. ``songs`` and
``days`` draw from that many distinct songs and consecutive days instead, for
low-cardinality files where most rows merge.

Rows are built half a million at a time in a fixed-width numpy record array, each
field gathered from a small table of ready-made texts (all songs, all days, every
plays value right-aligned in NUL bytes), and the NUL padding is then dropped in one
boolean-mask pass. No Python code runs per row, a writer thread writes one chunk
while the next is built, and memory stays at a few chunks whatever the file size.
"""

import datetime
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import fsspec
import numpy as np
from tqdm import tqdm

HEADER = b"Song,Date,Number of Plays\n"
FIRST_DAY = datetime.date(1994, 8, 8)
SONG_LETTERS = 4
MAX_PLAYS = 100_000
ROWS_PER_CHUNK = 1 << 19

_PLAYS_DIGITS = len(str(MAX_PLAYS))
# One row before its padding (NUL bytes, left of the plays digits) is dropped.
_ROW = np.dtype(
    [
        ("song", f"S{SONG_LETTERS}"),
        ("comma", "S1"),
        ("date", "S10"),
        ("comma2", "S1"),
        ("plays", f"S{_PLAYS_DIGITS}"),
        ("newline", "S1"),
    ]
)

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE_PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in a size such as ``500``, ``100MB``, ``1GB`` or ``1.5GiB`` (KB/MB/GB/TB are
    powers of 1000, KiB/MiB/GiB/TiB powers of 1024)."""
    match = _SIZE_PATTERN.fullmatch(text)
    unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or not unit:
        raise ValueError(f"size {text!r} is not a size like 500, 100MB, 1GB or 1.5GiB")
    size = int(float(match.group(1)) * unit)
    if size <= 0:
        raise ValueError(f"size {text!r} is not larger than zero")
    return size


def write_demo_file(
    path: str,
    total_size_bytes: int,
    *,
    songs: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> int:
    """Write a random play-count CSV of about ``total_size_bytes`` to ``path`` (a local
    path or fsspec URL) and return the bytes written.

    The file ends on a full line, at most one row short of the requested size. With
    ``songs``/``days`` it holds exactly that many distinct songs/days as soon as it has
    that many rows. The same ``seed`` gives the same file (on the same day, since the
    default date range ends today).
    """
    if total_size_bytes < len(HEADER):
        raise ValueError(f"total size {total_size_bytes} bytes cannot hold even the header")
    rng = np.random.default_rng(seed)
    chunks = _chunks(rng, total_size_bytes, _song_names(rng, songs), _day_names(rng, days))
    written = 0
    with (
        cast(fsspec.core.OpenFile, fsspec.open(path, "wb")) as out,  # typed as one file or a list
        tqdm(
            total=total_size_bytes, unit="B", unit_scale=True, desc=str(path), file=sys.stderr, disable=not progress
        ) as bar,
        ThreadPoolExecutor(max_workers=1) as writer,  # writes one chunk while the next is built
    ):
        pending = None
        for chunk in chunks:
            if pending is not None:
                pending.result()
            pending = writer.submit(out.write, chunk)
            written += len(chunk)
            bar.update(len(chunk))
        if pending is not None:
            pending.result()
    return written


def _chunks(
    rng: np.random.Generator, total_size_bytes: int, song_names: np.ndarray, day_names: np.ndarray
) -> Iterator[bytes | np.ndarray]:
    """The header, then chunks of rows up to the last full line that fits."""
    yield HEADER
    room = total_size_bytes - len(HEADER)
    plays_texts = _plays_texts()
    cover_all = True
    while True:
        chunk = _rows(rng, song_names, day_names, plays_texts, cover_all=cover_all)
        cover_all = False
        if len(chunk) > room:
            line_ends = np.flatnonzero(chunk[:room] == ord("\n"))
            if line_ends.size:
                yield chunk[: line_ends[-1] + 1]
            return
        room -= len(chunk)
        yield chunk


def _song_names(rng: np.random.Generator, songs: int | None) -> np.ndarray:
    """Every 4-letter name, or ``songs`` distinct ones at random."""
    possible = 26**SONG_LETTERS
    if songs is None:
        codes = np.arange(possible)
    elif 1 <= songs <= possible:
        codes = rng.choice(possible, size=songs, replace=False)
    else:
        raise ValueError(f"songs {songs} is not between 1 and {possible} (all {SONG_LETTERS}-letter names)")
    letters = codes[:, None] // 26 ** np.arange(SONG_LETTERS - 1, -1, -1) % 26 + ord("a")
    return letters.astype(np.uint8).view(f"S{SONG_LETTERS}").ravel()


def _day_names(rng: np.random.Generator, days: int | None) -> np.ndarray:
    """Every day from 1994-08-08 to today as ``YYYY-MM-DD``, or ``days`` consecutive ones
    at a random place in that range."""
    every_day = np.arange(np.datetime64(FIRST_DAY, "D"), np.datetime64(datetime.date.today(), "D") + 1)
    if days is not None:
        if not 1 <= days <= len(every_day):
            raise ValueError(f"days {days} is not between 1 and {len(every_day)} (1994-08-08 to today)")
        start = rng.integers(0, len(every_day) - days + 1)
        every_day = every_day[start : start + days]
    return every_day.astype("S10")


def _plays_texts() -> np.ndarray:
    """``n`` right-aligned in a field of NUL bytes, for every n up to MAX_PLAYS."""
    numbers = np.arange(MAX_PLAYS + 1)
    digits = numbers[:, None] // 10 ** np.arange(_PLAYS_DIGITS - 1, -1, -1) % 10 + ord("0")
    digits[numbers[:, None] < 10 ** np.arange(_PLAYS_DIGITS - 1, -1, -1)] = 0
    digits[0, -1] = ord("0")
    return digits.astype(np.uint8).view(f"S{_PLAYS_DIGITS}").ravel()


def _rows(
    rng: np.random.Generator,
    song_names: np.ndarray,
    day_names: np.ndarray,
    plays_texts: np.ndarray,
    *,
    cover_all: bool,
) -> np.ndarray:
    """One chunk of CSV rows as a flat byte array. ``cover_all`` starts the chunk with
    every song and every day once, so a file that has as many rows holds all of them."""
    rows = np.empty(ROWS_PER_CHUNK, dtype=_ROW)
    rows["song"] = song_names[_indices(rng, len(song_names), cover_all)]
    rows["date"] = day_names[_indices(rng, len(day_names), cover_all)]
    rows["plays"] = plays_texts[rng.integers(1, MAX_PLAYS + 1, size=ROWS_PER_CHUNK, dtype=np.int32)]
    rows["comma"] = rows["comma2"] = b","
    rows["newline"] = b"\n"
    row_bytes = rows.view(np.uint8)
    return row_bytes[row_bytes != 0]


def _indices(rng: np.random.Generator, count: int, cover_all: bool) -> np.ndarray:
    """Random row indices into ``count`` values; with ``cover_all`` the first ``count``
    are a permutation of all of them (each row stays uniform on its own)."""
    indices = rng.integers(0, count, size=ROWS_PER_CHUNK, dtype=np.int32)
    if cover_all:  # count <= 26**4 < ROWS_PER_CHUNK
        indices[:count] = rng.permutation(count)
    return indices
