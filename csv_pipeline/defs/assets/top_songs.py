"""The file's most played songs as a table, as the materialization and its check show them."""

from collections.abc import Iterable

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

TOP_SONGS_SCHEMA = TableSchema([TableColumn("Song", "string"), TableColumn("Plays", "int")])


def top_songs_table(songs: Iterable[tuple[str, int]]) -> MetadataValue:
    """(song, plays over all dates) pairs, most played first, as a table the UI draws."""
    return MetadataValue.table(
        [TableRecord({"Song": song, "Plays": plays}) for song, plays in songs], schema=TOP_SONGS_SCHEMA
    )
