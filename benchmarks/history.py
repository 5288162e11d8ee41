"""Benchmark of the play history: adding a 1 GB file's result to a history of ten such files,
against that file's own run, and ``csv-pipeline history --song`` on the result.

One demo file is made and processed once with ``csv-pipeline process`` (its own run, which
also loads it into a history of its own); its shards are then loaded into a second history
under ten file keys, and once more under an eleventh: that last load is the cost of adding a
file to a history of ten. The run's metadata (from the table's log) and the nightly scan of
the whole history are timed apart.
Everything is under ``--data-dir`` (default ``/tmp/csv_pipeline_history_bench``), removed at
the end unless ``--keep``.

    .venv/bin/python benchmarks/history.py
    .venv/bin/python benchmarks/history.py --size 100MB --files 3
"""

import argparse
import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from csv_pipeline.engine import history

BIN = Path(sys.executable).parent
SAMPLE_SECONDS = 0.05
T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (GB, the process and its children) of a command."""
    started = time.perf_counter()
    process = psutil.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(member.memory_info().rss for member in tree))
            except psutil.Error:
                pass
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    return wall, peak / 1e9, subprocess.CompletedProcess(args, process.returncode, out, err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1GB")
    parser.add_argument("--files", type=int, default=10, help="files already in the history")
    parser.add_argument("--data-dir", default="/tmp/csv_pipeline_history_bench")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    print(f"load average at the start: {os.getloadavg()[0]:.1f} (2 cores)\n")
    print("| step | wall s | peak RSS GB | note | load |")
    print("| --- | ---: | ---: | --- | ---: |", flush=True)
    try:
        measure(data, args.size, args.files, report)
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


def report(step: str, wall: float, peak: float | None, note: str) -> None:
    """One row of the table, printed as soon as it is measured, with the 1-minute load then."""
    shown = "" if peak is None else f"{peak:.2f}"
    print(f"| {step} | {wall:.2f} | {shown} | {note} | {os.getloadavg()[0]:.1f} |", flush=True)


def measure(data: Path, size: str, files: int, report: Callable[[str, float, float | None, str], None]) -> None:
    demo = data / "demo.csv"
    if not demo.exists():
        subprocess.run(
            [
                str(BIN / "csv-pipeline"),
                "demo-file",
                "--total-size",
                size,
                "--file-name",
                str(demo),
                "--no-progress",
                "--seed",
                "1",
            ],
            check=True,
        )
    env = {**os.environ, "DAGSTER_HOME": str(data / "dagster_home"), "CSV_PIPELINE_HISTORY": str(data / "own_history")}
    wall, peak, done = run_measured(
        [str(BIN / "csv-pipeline"), "process", str(demo), "--output", str(data / "out")], env
    )
    if done.returncode != 0:
        raise SystemExit(f"csv-pipeline process failed: {done.stderr}")
    result = json.loads(done.stdout)
    report(
        "`csv-pipeline process` of the file (its own run, history load included)",
        wall,
        peak,
        f"{result['rows_out']:,} rows out",
    )

    shards = result["output_files"]
    url = str(data / "history")
    loads = [
        timed(lambda key=f"file-{index:02d}.csv": history.replace_file(url, key, "bench", shards))[0]
        for index in range(files)
    ]
    report(
        f"load the shards under {files} keys, each (mean)",
        sum(loads) / len(loads),
        None,
        f"min {min(loads):.2f}, max {max(loads):.2f}",
    )
    add, loaded = timed(lambda: history.replace_file(url, f"file-{files:02d}.csv", "bench", shards))
    report(f"add the file's result to a history of {files} files", add, None, f"table version {loaded.version}")
    again, _ = timed(lambda: history.replace_file(url, f"file-{files:02d}.csv", "bench-2", shards))
    report("replace that file's contribution (same key again)", again, None, "")
    log_time, contents = timed(lambda: history.contents(url))
    report(
        "the run's metadata from the log (files, rows, dates)",
        log_time,
        None,
        f"{contents.files} files, {contents.rows:,} rows",
    )

    with open(shards[len(shards) // 2], newline="") as shard:
        song = list(itertools.islice(csv.reader(shard), 1, 2))[0][0]  # the first song of a shard
    query_env = {**os.environ, "CSV_PIPELINE_HISTORY": url}
    wall, peak, done = run_measured([str(BIN / "csv-pipeline"), "history", "--song", song], query_env)
    report(
        f"`csv-pipeline history --song {song!r}`",
        wall,
        peak,
        f"{done.stdout.count(chr(10)) - 1} rows printed, exit {done.returncode}",
    )
    wall, peak, done = run_measured(
        [str(BIN / "csv-pipeline"), "history", "--song", song, "--from", "2020-01-01", "--until", "2020-01-31"],
        query_env,
    )
    report(
        "... with `--from 2020-01-01 --until 2020-01-31`", wall, peak, f"{done.stdout.count(chr(10)) - 1} rows printed"
    )
    maintain, metrics = timed(lambda: history.maintain(url))
    report("maintenance (compact, checkpoint, vacuum)", maintain, None, json.dumps(metrics))
    scan_time, totals = timed(lambda: history.scan_totals(url))
    report(
        "nightly scan: distinct songs, plays per month",
        scan_time,
        None,
        f"{totals.distinct_songs:,} songs, {len(totals.plays_per_month)} months",
    )


if __name__ == "__main__":
    main()
