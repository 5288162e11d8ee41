"""Side-by-side benchmark of ``csv-pipeline process`` and its peers.

Makes the input files with ``csv-pipeline demo-file`` (kept in ``--data-dir``, outside git,
and reused while their size is right), then runs every engine on every file, one process at
a time, and measures each process tree: wall seconds, and peak memory as the sum of RSS over
the process and all its descendants (Dask workers included), sampled every 50 ms. Prints the
machine, a markdown table with the ratio to polars, and where the time of our Dagster runs
went. Output folders are removed after each run; the input files stay.

    .venv/bin/python benchmarks/run.py                             # tiny + 1 GB files, all engines
    .venv/bin/python benchmarks/run.py --sizes 1GB,10GB --engines csv_pipeline,polars,duckdb
    .venv/bin/python benchmarks/run.py --files tiny --repeat 3     # Dagster's own overhead

Files: ``demo`` (the replaced system's demo shape: ~46 M rows per GB, almost all distinct
(Song, Date) pairs), ``low`` (10,000 songs x 30 days), ``tiny`` (1 KB, so a run is nearly all
start-up and Dagster overhead). The peers are in ``peers.py`` beside this script.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from csv_pipeline.demo_data import parse_size

if TYPE_CHECKING:
    from distributed import Client

OURS = "csv_pipeline"
PEERS = ("arrow_read", "polars", "duckdb", "dask_seed", "pandas_chunks")
DEFAULT_ENGINES = (OURS, "arrow_read", "polars", "duckdb", "dask_seed")
SLOW_PEER_LIMIT = 2 * 10**9  # by default dask_seed only runs on files up to this size
FILE_KINDS = {"demo": {}, "low": {"songs": 10_000, "days": 30}}
TINY_SIZE = "1KB"
SEED = 1
LONGEST_DEMO_ROW = 23
SAMPLE_SECONDS = 0.05  # RSS of the known members of the tree
TREE_SCAN_SAMPLES = 5  # every 5th sample also looks for new descendants (a scan of all of /proc)
DEFAULT_PEERS_SCRIPT = Path(__file__).resolve().parent / "peers.py"
LIBRARIES = ("dagster", "dagster-dask", "dask", "distributed", "pyarrow", "numpy", "pandas", "polars", "duckdb")


@dataclass(frozen=True)
class InputFile:
    label: str
    path: Path
    size: int
    songs: int | None = None
    days: int | None = None


@dataclass(frozen=True)
class Measurement:
    file: InputFile
    engine: str
    exit_code: int
    started_at: float  # epoch seconds, to compare with Dagster's run stats
    load: float  # the machine's 1-minute load average as the run started: other work skews the times
    wall_s: float
    rss_samples: tuple[tuple[float, int], ...]  # (epoch seconds, summed RSS bytes)
    rows_out: int | None
    note: str = ""
    run_id: str | None = None

    @property
    def peak_rss_bytes(self) -> int:
        return max((rss for _, rss in self.rss_samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        """The highest sampled RSS from ``start`` to ``end`` (epoch seconds)."""
        return max((rss for at, rss in self.rss_samples if start <= at <= end), default=0)


class TreeRssSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants until stopped.

    Finding descendants reads every process's /proc entry (~5 ms here), so it runs every
    250 ms; the RSS of the processes found is read every 50 ms. The sampler then takes
    about 2 % of one core, which on 2 cores would otherwise come out of the engine's time.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.members: dict[int, psutil.Process] = {}  # the tree as last scanned, minus the dead
        self.seen: dict[int, psutil.Process] = {}  # every process ever in the tree
        self.samples: list[tuple[float, int]] = []  # (epoch seconds, summed RSS bytes)
        self._stop_event = threading.Event()

    def run(self) -> None:
        samples = 0
        while not self._stop_event.is_set():
            if samples % TREE_SCAN_SAMPLES == 0:
                self._scan_tree()
            self.samples.append((time.time(), self._tree_rss()))
            samples += 1
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def stop_leftovers(self) -> int:
        """Stops descendants still running a few seconds after the root exited (they would
        skew the next run) and says how many there were."""
        running = [process for process in self.seen.values() if process.is_running()]
        leftovers = psutil.wait_procs(running, timeout=3)[1]
        for leftover in leftovers:
            leftover.terminate()
        for leftover in psutil.wait_procs(leftovers, timeout=5)[1]:
            leftover.kill()
        return len(leftovers)

    def _scan_tree(self) -> None:
        try:
            self.members = {process.pid: process for process in (self.root, *self.root.children(recursive=True))}
        except psutil.NoSuchProcess:
            self.members = {}
        self.seen.update(self.members)

    def _tree_rss(self) -> int:
        total = 0
        for pid, process in list(self.members.items()):
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                del self.members[pid]
        return total


def main() -> int:
    args = parse_args()
    data_dir = Path(args.data_dir).resolve()
    inputs_dir, logs_dir, out_root = data_dir / "inputs", data_dir / "logs", data_dir / "out"
    for folder in (inputs_dir, logs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    csv_pipeline = args.csv_pipeline or shutil.which("csv-pipeline", path=str(Path(sys.executable).parent))
    if csv_pipeline is None:
        sys.exit(f"csv-pipeline is not installed next to {sys.executable}; pass --csv-pipeline PATH.")
    environ = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(data_dir / "dagster_home"))}
    Path(environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    files = input_files(inputs_dir, args.sizes, args.files)
    for input_file in files:
        make_input(input_file, csv_pipeline, inputs_dir)

    print(machine_description(), flush=True)
    results = []
    for input_file in files:
        rows_in = count_rows(input_file.path)  # also warms the page cache for every engine alike
        print(
            f"\n{input_file.label}: {input_file.path} ({input_file.path.stat().st_size / 1e9:.2f} GB, "
            f"{rows_in:,} rows)",
            file=sys.stderr,
            flush=True,
        )
        for engine in engines_for(input_file, args.engines):
            for _ in range(args.repeat):
                command = engine_command(engine, input_file.path, out_root / engine, csv_pipeline, args.peers)
                result = run_engine(input_file, engine, command, out_root / engine, logs_dir, environ)
                print(f"  {engine:13} {describe(result)}", file=sys.stderr, flush=True)
                results.append(result)
    print()
    print(results_table(results))
    ours = [result for result in results if result.engine == OURS and result.run_id]
    if ours:
        print()
        print(dagster_table(ours, environ["DAGSTER_HOME"]))
    return 0 if all(result.exit_code == 0 for result in results) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default="/tmp/csv_pipeline_bench",
        help="where inputs, outputs, logs and the Dagster instance live (default %(default)s)",
    )
    parser.add_argument(
        "--sizes",
        default="1GB",
        type=lambda text: text.split(","),
        help="comma-separated sizes of the demo and low files, e.g. 1GB,10GB (default %(default)s)",
    )
    parser.add_argument(
        "--files",
        default="tiny,demo,low",
        type=lambda text: text.split(","),
        help="which files: tiny, demo, low (default %(default)s)",
    )
    parser.add_argument(
        "--engines",
        type=lambda text: text.split(","),
        help=f"comma-separated, from {', '.join((OURS, *PEERS))} "
        f"(default {','.join(DEFAULT_ENGINES)}; dask_seed only on files up to 2 GB)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each engine on each file (default 1)")
    parser.add_argument("--peers", default=str(DEFAULT_PEERS_SCRIPT), help="peers.py (default %(default)s)")
    parser.add_argument("--csv-pipeline", help="the csv-pipeline console script (default: next to this python)")
    args = parser.parse_args()
    unknown = (set(args.files) - {"tiny", *FILE_KINDS}) | (set(args.engines or ()) - {OURS, *PEERS})
    if unknown:
        parser.error(f"unknown file kind or engine: {', '.join(sorted(unknown))}")
    for size in args.sizes:
        try:
            parse_size(size)
        except ValueError as error:
            parser.error(str(error))
    return args


def input_files(inputs_dir: Path, sizes: list[str], kinds: list[str]) -> list[InputFile]:
    files = []
    if "tiny" in kinds:
        files.append(InputFile(f"tiny-{TINY_SIZE}", inputs_dir / f"tiny-{TINY_SIZE}.csv", parse_size(TINY_SIZE)))
    for size in sizes:
        for kind, cardinality in FILE_KINDS.items():
            if kind in kinds:
                files.append(
                    InputFile(f"{kind}-{size}", inputs_dir / f"{kind}-{size}.csv", parse_size(size), **cardinality)
                )
    return files


def make_input(input_file: InputFile, csv_pipeline: str, inputs_dir: Path) -> None:
    """Writes the file with ``csv-pipeline demo-file`` unless it is already there with its size."""
    path = input_file.path
    if path.exists() and input_file.size - LONGEST_DEMO_ROW < path.stat().st_size <= input_file.size:
        return
    free = shutil.disk_usage(inputs_dir).free
    if free < 3 * input_file.size:  # the input, plus room for an engine's output and scratch
        sys.exit(
            f"{inputs_dir} has {free / 1e9:.1f} GB free; {input_file.label} needs "
            f"{3 * input_file.size / 1e9:.1f} GB (input, output and scratch)."
        )
    partial = path.with_suffix(".partial")
    command = [
        csv_pipeline,
        "demo-file",
        "--total-size",
        str(input_file.size),
        "--file-name",
        str(partial),
        "--seed",
        str(SEED),
    ]
    if input_file.songs is not None:
        command += ["--songs", str(input_file.songs)]
    if input_file.days is not None:
        command += ["--days", str(input_file.days)]
    print(f"making {path}: {' '.join(command)}", file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    partial.replace(path)


def demo_input(size: str, data_dir: Path) -> InputFile:
    """The demo file of ``size`` (``1GB``) in ``data_dir``/inputs, made there unless it is already."""
    inputs_dir = data_dir / "inputs"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    source = InputFile(f"demo-{size}", inputs_dir / f"demo-{size}.csv", parse_size(size))
    csv_pipeline = shutil.which("csv-pipeline", path=str(Path(sys.executable).parent))
    if csv_pipeline is None:
        sys.exit(f"csv-pipeline is not installed next to {sys.executable}.")
    make_input(source, csv_pipeline, inputs_dir)
    return source


@contextmanager
def two_worker_cluster() -> Iterator["Client"]:
    """A client of two single-threaded Dask worker processes on loopback, dashboard off."""
    from distributed import Client, LocalCluster  # only the engine-level benchmarks need Dask

    # dashboard_address=None turns the dashboard off, as distributed documents; its parameter is
    # unannotated, so pyright takes the type of its default (a str).
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,  # pyright: ignore[reportArgumentType]
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def engines_for(input_file: InputFile, chosen: list[str] | None) -> list[str]:
    if chosen is not None:
        return chosen
    return [engine for engine in DEFAULT_ENGINES if engine != "dask_seed" or input_file.size <= SLOW_PEER_LIMIT]


def engine_command(engine: str, source: Path, out_dir: Path, csv_pipeline: str, peers: str) -> list[str]:
    if engine == OURS:
        return [csv_pipeline, "process", str(source), "--output", str(out_dir)]
    return [sys.executable, peers, engine, str(source), str(out_dir)]


def run_engine(
    input_file: InputFile, engine: str, command: list[str], out_dir: Path, logs_dir: Path, environ: dict[str, str]
) -> Measurement:
    """Runs one engine in its own process tree, measures it, counts its output rows, removes its output."""
    shutil.rmtree(out_dir, ignore_errors=True)
    stdout_path = logs_dir / f"{input_file.label}.{engine}.out"
    stderr_path = logs_dir / f"{input_file.label}.{engine}.err"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        load, started_at, start = os.getloadavg()[0], time.time(), time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=environ)
        sampler = TreeRssSampler(process.pid)
        sampler.start()
        exit_code = process.wait()
        wall_s = time.perf_counter() - start
        sampler.stop()
    notes = []
    leftovers = sampler.stop_leftovers()
    if leftovers:
        notes.append(f"left {leftovers} processes running (stopped)")
    rows_out, run_id = None, None
    if engine == OURS:
        run_id, reported_rows, shards, problem = read_process_json(stdout_path)
        if problem:
            notes.append(problem)
        if exit_code == 0:
            rows_out = sum(count_rows(Path(shard.removeprefix("file://"))) for shard in shards)
            if reported_rows != rows_out:
                notes.append(f"JSON rows_out {reported_rows} differs from the {rows_out} rows in the shards")
    elif exit_code == 0 and engine != "arrow_read":
        rows_out = sum(count_rows(path) for path in out_dir.rglob("*.csv"))
    if exit_code != 0:
        notes.append(f"exit {exit_code}, see {stderr_path}")
    shutil.rmtree(out_dir, ignore_errors=True)
    return Measurement(
        input_file,
        engine,
        exit_code,
        started_at,
        load,
        wall_s,
        tuple(sampler.samples),
        rows_out,
        "; ".join(notes),
        run_id,
    )


def read_process_json(stdout_path: Path) -> tuple[str | None, int | None, list[str], str]:
    """The run id, rows_out and shards that ``csv-pipeline process`` printed, and what was wrong."""
    try:
        result = json.loads(stdout_path.read_text())
    except ValueError:
        return None, None, [], f"no JSON result on stdout, see {stdout_path}"
    problem = "" if result.get("status") == "SUCCESS" else f"status {result.get('status')}: {result.get('error')}"
    return result.get("run_id"), result.get("rows_out"), result.get("output_files") or [], problem


def count_rows(path: Path) -> int:
    """Data rows of a CSV with a header: its line ends minus one (the files have no quoted newlines)."""
    line_ends = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 24):
            line_ends += block.count(b"\n")
    return max(line_ends - 1, 0)


def describe(result: Measurement) -> str:
    rows = "" if result.rows_out is None else f", {result.rows_out:,} rows out"
    note = f"  ({result.note})" if result.note else ""
    return f"{result.wall_s:8.2f} s, {result.peak_rss_bytes / 1e9:5.2f} GB{rows}{note}"


def results_table(results: list[Measurement]) -> str:
    polars_wall = {}
    for result in results:
        if result.engine == "polars" and result.exit_code == 0:
            polars_wall.setdefault(result.file.label, []).append(result.wall_s)
    lines = [
        "| file | engine | wall s | peak RSS GB | rows out | wall ÷ polars | load before | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        reference = polars_wall.get(result.file.label)
        ratio = f"{result.wall_s / statistics.median(reference):.2f}" if reference and result.exit_code == 0 else ""
        rows = "" if result.rows_out is None else f"{result.rows_out:,}"
        lines.append(
            f"| {result.file.label} | {result.engine} | {result.wall_s:.2f} | "
            f"{result.peak_rss_bytes / 1e9:.2f} | {rows} | {ratio} | {result.load:.1f} | {result.note} |"
        )
    return "\n".join(lines)


def dagster_table(ours: list[Measurement], dagster_home: str) -> str:
    """Where the wall time of our runs went, from the Dagster instance's own run and step stats:
    before the run started (interpreter, imports, instance), the steps (each with the peak RSS
    sampled while it ran), the rest of the run (executor and Dask cluster start and stop,
    events), and after the run ended (exit)."""
    from dagster import DagsterInstance  # only needed here, and slow to import

    lines = [
        "| file | process wall s | before run start s | run s | steps: s, peak RSS | run outside steps s "
        "| after run end s |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    with DagsterInstance.from_config(dagster_home) as instance:
        for result in ours:
            assert result.run_id is not None  # the caller passes the runs that reported their id
            run = instance.get_run_stats(result.run_id)
            assert run.start_time is not None and run.end_time is not None  # a finished run
            steps = [
                (step.step_key, step.start_time, step.end_time)
                for step in instance.get_run_step_stats(result.run_id)
                if step.start_time is not None and step.end_time is not None  # every step of a finished run
            ]
            run_s = run.end_time - run.start_time
            steps_s = sum(end - start for _, start, end in steps)
            step_list = ", ".join(
                f"{key.rsplit('.', 1)[-1]} {end - start:.2f} s {result.peak_between(start, end) / 1e9:.2f} GB"
                for key, start, end in sorted(steps, key=lambda step: step[1])
            )
            lines.append(
                f"| {result.file.label} | {result.wall_s:.2f} | {run.start_time - result.started_at:.2f} | "
                f"{run_s:.2f} | {step_list} | {run_s - steps_s:.2f} | "
                f"{result.started_at + result.wall_s - run.end_time:.2f} |"
            )
    return "\n".join(lines)


def machine_description() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in LIBRARIES)
    return (
        f"Machine: {os.cpu_count()} CPUs ({cpu}), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}; {versions}"
    )


if __name__ == "__main__":
    sys.exit(main())
