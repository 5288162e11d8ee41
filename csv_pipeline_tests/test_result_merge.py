"""``write_merged_csv``: the streaming merge behind ``csv-pipeline result``, on local shards."""

import csv
import io

from csv_pipeline.engine.merge import write_merged_csv

HEADER = "Song,Date,Total Number of Plays for Date\n"


def write_shard(path, rows: list[tuple[str, str, int]]) -> str:
    with open(path, "w", encoding="utf-8", newline="") as shard:
        shard.write(HEADER)
        csv.writer(shard, lineterminator="\n").writerows(rows)
    return str(path)


def test_rows_of_all_shards_come_out_once_sorted_by_song_then_date_under_one_header(tmp_path):
    shards = [
        # Shards as the engine writes them: each sorted by Song then Date, songs interleaved
        # across shards, one song ("Umbrella") too big for one shard continuing in the next.
        write_shard(
            tmp_path / "part-00000.csv", [("Hello, Goodbye", "2020-01-01", 3), ("Umbrella", "2020-01-01", 150)]
        ),
        write_shard(tmp_path / "part-00001.csv", [("Umbrella", "2020-01-02", 250), ("Ünïcode ♫", "2020-01-01", 1)]),
        write_shard(tmp_path / "part-00002.csv", [("In The End", "2019-12-31", 7), ('Say "Hi"', "2020-01-01", 9)]),
        write_shard(tmp_path / "part-00003.csv", []),
        write_shard(tmp_path / "part-00004.csv", [("apple", "2020-01-01", 2), ("Éclair", "2020-01-01", 5)]),
    ]
    output = io.StringIO(newline="")

    rows = write_merged_csv(shards, output)

    assert rows == 8
    # Code point order, which is UTF-8 byte order: upper case < lower case < accented letters.
    assert output.getvalue() == (
        HEADER
        + '"Hello, Goodbye",2020-01-01,3\n'
        + "In The End,2019-12-31,7\n"
        + '"Say ""Hi""",2020-01-01,9\n'
        + "Umbrella,2020-01-01,150\n"
        + "Umbrella,2020-01-02,250\n"
        + "apple,2020-01-01,2\n"
        + "Éclair,2020-01-01,5\n"
        + "Ünïcode ♫,2020-01-01,1\n"
    )


def test_a_result_without_rows_is_the_header_alone(tmp_path):
    output = io.StringIO(newline="")

    assert write_merged_csv([write_shard(tmp_path / "part-00000.csv", [])], output) == 0
    assert output.getvalue() == HEADER
