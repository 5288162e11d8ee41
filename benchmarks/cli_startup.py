"""Wall time of short ``csv-pipeline`` commands, where starting the interpreter and importing
are most of the work: ``--help``, and ``status`` of a file against a webserver that is not
listening (so the command runs its whole path and ends at the refused connection, exit 2).

Each command runs ``--repeat`` times in a fresh interpreter, through the console script's
entry point (``--entry``, as setup.py names it), in an empty folder (so the package comes
from ``PYTHONPATH`` or the installation, not the current directory); the table gives the
median and the range, and the machine's load average when it started.

    PYTHONPATH=$PWD python benchmarks/cli_startup.py [--entry csv_pipeline.cli.main:run] [--repeat 5]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed_runs(command: list[str], env: dict[str, str], cwd: str, repeat: int) -> tuple[list[float], int]:
    """Wall seconds of each run of ``command``, and the exit status of the last."""
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        seconds.append(time.perf_counter() - started)
    return seconds, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--entry", default="csv_pipeline.cli.main:run", help="module:function of the console script")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    module, function = args.entry.split(":")
    launcher = [
        sys.executable,
        "-c",
        f"import sys; sys.argv[0] = 'csv-pipeline'; from {module} import {function}; sys.exit({function}())",
    ]
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "CSV_PIPELINE_INBOX": os.path.join(folder, "inbox"),
            "CSV_PIPELINE_OUTBOX": os.path.join(folder, "outbox"),
            "CSV_PIPELINE_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",
        }
        commands = {"csv-pipeline --help": ["--help"], "csv-pipeline status plays.csv": ["status", "plays.csv"]}
        print(f"entry point {args.entry}; load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
        print("| command | median s | min s | max s | runs | exit |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, arguments in commands.items():
            seconds, code = timed_runs(launcher + arguments, env, folder, args.repeat)
            print(
                f"| `{name}` | {statistics.median(seconds):.3f} | {min(seconds):.3f} | {max(seconds):.3f} "
                f"| {len(seconds)} | {code} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
