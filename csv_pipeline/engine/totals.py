"""Summing, sorting and rendering one bucket as CSV lines.

One compiled pass (``_kernels.sum_sort_render``) sorts the rows by song (UTF-8 bytes)
then date, sums equal neighbours with an exact 64-bit overflow check, and writes each
line straight into the output buffer (RFC 4180 quoting only where a song needs it). The
line offsets it returns are what lets shards be cut at exact byte positions; the songs'
totals over all dates give the file's top songs without another pass.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from csv_pipeline.engine import _kernels
from csv_pipeline.engine.kernels import row_buffers


class TotalOverflow(Exception):
    """A (song, date) total does not fit in 64 bits; the caller finds the line."""

    def __init__(self, song: str, day: int) -> None:
        super().__init__(song, day)
        self.song = song
        self.day = day


@dataclass(frozen=True)
class RenderedBucket:
    """One bucket's totals as CSV lines, sorted by song then date."""

    body: bytes  # ``song,YYYY-MM-DD,total\n`` per (song, date)
    line_offsets: np.ndarray  # int64: where each line starts in ``body``, then the end
    song_starts: np.ndarray  # int64: the line at which each song's lines begin
    song_totals: np.ndarray  # int64: each song's plays over all its dates (capped at 2**63 - 1)

    @property
    def rows(self) -> int:
        return len(self.line_offsets) - 1


def sum_sort_render(table: pa.Table) -> RenderedBucket:
    """Totals of a table of (song, date32, plays int64); TotalOverflow names the first
    (song, date) whose total passes 64 bits."""
    try:
        body, line_offsets, song_starts, song_totals = _kernels.sum_sort_render(row_buffers(table))
    except OverflowError as overflow:
        song, day = overflow.args
        raise TotalOverflow(song.decode("utf-8"), day) from None
    return RenderedBucket(
        body,
        np.frombuffer(line_offsets, np.int64),
        np.frombuffer(song_starts, np.int64),
        np.frombuffer(song_totals, np.int64),
    )
