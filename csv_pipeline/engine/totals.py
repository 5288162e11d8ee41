"""Summing and sorting one bucket, and rendering it as CSV lines.

Sorting strings row by row is what makes a naive group-by-and-sort slow. Here the songs
of a bucket are dictionary-encoded once, only the (much shorter) dictionary is sorted,
and every row then sorts by one integer key: song rank in the high bits, day in the low.
One integer sort gives both the grouping (equal neighbours) and the output order.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csv_pipeline.engine.rules import MAX_INT64

_SAFE_TOTAL = 2.0**62  # below this no group sum can overflow int64: skip the exact check
_NEEDS_QUOTES = r'[",\r\n]'
_QUOTE, _COMMA, _NEWLINE, _NOTHING = (pa.scalar(text, pa.large_string()) for text in ('"', ",", "\n", ""))


class TotalOverflow(Exception):
    """A (song, date) total does not fit in 64 bits; the caller finds the line."""

    def __init__(self, song: str, day: int) -> None:
        super().__init__(song, day)
        self.song = song
        self.day = day


@dataclass(frozen=True)
class Totals:
    """One row per (song, date), sorted by song (UTF-8 bytes) then date."""

    dictionary: pa.Array  # the distinct songs (large_string)
    song_index: np.ndarray  # each row's song, as an index into ``dictionary``
    days: np.ndarray  # int32 days since 1970-01-01
    totals: np.ndarray  # int64
    song_starts: np.ndarray  # row index where each song's rows begin


def sum_and_sort(table: pa.Table) -> Totals:
    """Totals of a table with columns (song, date32, plays int64)."""
    rows = table.num_rows
    if rows == 0:
        empty = np.empty(0, np.int64)
        return Totals(pa.array([], pa.large_string()), empty, np.empty(0, np.int32), empty, empty)
    encoded = pc.dictionary_encode(table.column(0).combine_chunks())
    dictionary = encoded.dictionary
    by_song = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty_like(by_song)
    rank[by_song] = np.arange(len(by_song))
    days = table.column(1).combine_chunks().cast(pa.int32()).to_numpy()
    first_day = int(days.min())
    day_bits = int(days.max() - first_day).bit_length()
    keys = (rank[encoded.indices.to_numpy()].astype(np.uint64) << np.uint64(day_bits)) | (days - first_day).astype(np.uint64)
    keys, order = _sorted_with_order(keys, (len(dictionary) - 1).bit_length() + day_bits)
    plays = table.column(2).combine_chunks().to_numpy()[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    totals = np.add.reduceat(plays, starts)
    group_keys = keys[starts]
    song_rank = (group_keys >> np.uint64(day_bits)).astype(np.int64)
    group_days = ((group_keys & np.uint64((1 << day_bits) - 1)).astype(np.int64) + first_day).astype(np.int32)
    if float(plays.astype(np.float64).sum()) >= _SAFE_TOTAL:
        totals = _exact_totals(plays, starts, totals, dictionary, by_song[song_rank], group_days)
    song_starts = np.flatnonzero(np.concatenate([[True], song_rank[1:] != song_rank[:-1]]))
    return Totals(dictionary.cast(pa.large_string()), by_song[song_rank], group_days, totals, song_starts)


def _sorted_with_order(keys: np.ndarray, key_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys sorted, and the permutation that sorts them (stable).

    When key and row number fit in 64 bits together, one ``np.sort`` of the packed values
    (vectorised, several times faster than ``argsort``) gives both.
    """
    row_bits = (len(keys) - 1).bit_length()
    if key_bits + row_bits > 64:
        order = np.argsort(keys, kind="stable")
        return keys[order], order
    packed = np.sort((keys << np.uint64(row_bits)) | np.arange(len(keys), dtype=np.uint64))
    return packed >> np.uint64(row_bits), (packed & np.uint64((1 << row_bits) - 1)).astype(np.int64)


def _exact_totals(plays, starts, totals, dictionary, group_songs, group_days) -> np.ndarray:
    """Redo, with Python integers, the groups whose float sum comes near the int64 limit."""
    approximate = np.add.reduceat(plays.astype(np.float64), starts)
    ends = np.append(starts[1:], len(plays))
    totals = totals.copy()
    for group in np.flatnonzero(approximate >= _SAFE_TOTAL):
        exact = sum(int(value) for value in plays[starts[group] : ends[group]])
        if exact > MAX_INT64:
            raise TotalOverflow(dictionary[int(group_songs[group])].as_py(), int(group_days[group]))
        totals[group] = exact
    return totals


def render_lines(totals: Totals) -> pa.Array:
    """Each row as ``song,date,total\\n`` (RFC 4180 quoting only where a song needs it).

    The result's data buffer is the CSV body and its offsets are the row boundaries,
    which is what lets shards be cut at exact byte positions.
    """
    names = totals.dictionary  # quoting works on the distinct songs only, before the take
    needs_quotes = pc.match_substring_regex(names, _NEEDS_QUOTES)
    if len(names) and pc.any(needs_quotes).as_py():
        quoted = pc.binary_join_element_wise(_QUOTE, pc.replace_substring(names, '"', '""'), _QUOTE, _NOTHING)
        names = pc.if_else(needs_quotes, quoted, names)
    songs = names.take(pa.array(totals.song_index))
    first_day = int(totals.days.min()) if len(totals.days) else 0
    span = int(totals.days.max()) - first_day + 1 if len(totals.days) else 0
    day_names = pa.array(np.arange(first_day, first_day + span, dtype=np.int32), pa.date32()).cast(pa.large_string())
    dates = day_names.take(pa.array(totals.days - first_day))
    ends = pc.binary_join_element_wise(pa.array(totals.totals).cast(pa.large_string()), _NOTHING, _NEWLINE)
    return pc.binary_join_element_wise(songs, dates, ends, _COMMA)


def line_offsets(lines: pa.Array) -> np.ndarray:
    """Byte offset of every line start, plus the end, relative to the first line."""
    offsets = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset : lines.offset + len(lines) + 1]
    return offsets - offsets[0]


def body_bytes(lines: pa.Array) -> memoryview:
    """The concatenated lines, without a copy."""
    offsets = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset : lines.offset + len(lines) + 1]
    if len(lines) == 0:
        return memoryview(b"")
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]
