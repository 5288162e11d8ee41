"""The three layers stay layered: the engine imports neither Dagster nor the rest of the project's
layers, the Dagster code location does not import the command line, the shared modules
import none of the layers, and the command line loads Dagster and the job only in the command
that runs it.

Every ``import`` statement counts, at module level or inside a function, so an import moved
into a function to dodge a test is still caught. A fresh interpreter also checks what importing
the engine or the command line, and running the quick commands, loads, so a layer reached
through a third package is caught too.
"""

import ast
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "csv_pipeline"

FORBIDDEN = {
    "engine": (
        "dagster",
        "dagster_dask",
        "dagster_postgres",
        "csv_pipeline.defs",
        "csv_pipeline.cli",
        "csv_pipeline.definitions",
    ),
    "defs": ("csv_pipeline.cli",),
    "settings.py": ("dagster", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
    "inbox.py": ("dagster", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
    "demo_data.py": ("dagster", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
    "labels.py": ("dagster", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
}
# The command line reaches Dagster and the job only in the command that runs the job, and only
# inside its functions.
CLI_DAGSTER_LAYER = ("dagster", "dagster_dask", "dagster_postgres", "csv_pipeline.defs", "csv_pipeline.definitions")
JOB_COMMAND = PACKAGE / "cli" / "process.py"
# What the command line loads only for the commands that need it: Dagster, Dask, Arrow, the job.
HEAVY = ("dagster", "dagster_dask", "dagster_postgres", "distributed", "dask", "pyarrow", "pandas")


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def imported_modules(path: Path, package: str, *, at_import: bool = False) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, relative ones
    resolved against ``package``; with ``at_import``, only those run when the module is
    imported (not inside a function or an ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in statements_run_at_import(tree) if at_import else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def statements_run_at_import(node: ast.AST):
    """``node`` and what under it runs at import: no function bodies, no ``if TYPE_CHECKING:``."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
            continue
        yield from statements_run_at_import(child)


def breaks_rule(module: str, forbidden: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in forbidden)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_from_the_layers_above_it(layer: str):
    root = PACKAGE / layer
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    assert files, f"no module in {root}"

    wrong = {
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in files
        for module in imported_modules(path, package_of(path))
        if breaks_rule(module, FORBIDDEN[layer])
    }

    assert not wrong, sorted(wrong)


def test_the_rule_catches_imports_inside_functions_and_relative_ones(tmp_path: Path):
    module = tmp_path / "probe.py"
    module.write_text(
        "def later():\n    from dagster import asset\n    from ..defs import jobs\n    return asset, jobs\n"
    )

    found = imported_modules(module, "csv_pipeline.engine")

    assert {"dagster", "csv_pipeline.defs.jobs"} <= found
    assert [name for name in sorted(found) if breaks_rule(name, FORBIDDEN["engine"])] == [
        "csv_pipeline.defs",
        "csv_pipeline.defs.jobs",
        "dagster",
        "dagster.asset",
    ]


def test_importing_the_engine_loads_no_dagster_and_no_other_layer():
    probe = (
        "import sys, csv_pipeline.engine, csv_pipeline.engine.history\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dagster_dask')"
        " or m.startswith(('csv_pipeline.defs', 'csv_pipeline.cli', 'csv_pipeline.definitions'))))\n"
    )
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert answer.stdout.strip() == "[]"


def test_the_engine_declares_to_type_checkers_the_names_it_loads_on_first_use():
    """``csv_pipeline.engine`` loads its names on first use; its ``TYPE_CHECKING`` imports and its
    ``__all__`` (both read by type checkers) must name the same objects."""
    import csv_pipeline.engine as engine

    tree = ast.parse((PACKAGE / "engine" / "__init__.py").read_text())
    declared = {
        alias.name: node.module.removeprefix("csv_pipeline.engine.")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("csv_pipeline.engine.")
        for alias in node.names
    }

    assert declared == engine._MODULE_OF
    assert sorted(engine.__all__) == sorted(engine._MODULE_OF)


def test_the_command_line_imports_dagster_and_the_job_only_inside_the_command_that_runs_it():
    files = sorted((PACKAGE / "cli").glob("*.py"))
    assert JOB_COMMAND in files

    wrong = {
        f"{path.relative_to(PACKAGE.parent)} imports {module}{' at import' if path == JOB_COMMAND else ''}"
        for path in files
        for module in imported_modules(path, package_of(path), at_import=path == JOB_COMMAND)
        if breaks_rule(module, CLI_DAGSTER_LAYER)
    }

    assert not wrong, sorted(wrong)


def test_the_import_rule_skips_function_bodies_and_type_checking_blocks(tmp_path: Path):
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nimport argparse\nif TYPE_CHECKING:\n    import dagster\n"
        "def run():\n    import distributed\n    return distributed\n"
    )

    assert imported_modules(module, "csv_pipeline.cli", at_import=True) == {
        "typing",
        "typing.TYPE_CHECKING",
        "argparse",
    }
    assert {"dagster", "distributed"} <= imported_modules(module, "csv_pipeline.cli")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def heavy_modules_loaded(code: str, tmp_path: Path) -> tuple[int, list[str]]:
    """Run ``code`` (which sets ``exit_code``) in a fresh interpreter in ``tmp_path``, with no
    Dagster webserver at its URL; return its exit code and the heavy modules it loaded."""
    probe = (
        "import json, sys\n" + code + "\n"
        f"print(exit_code, json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
        " or m.startswith('csv_pipeline.definitions')"
        " or m.startswith('csv_pipeline.defs'))))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(PACKAGE.parent),
        "CSV_PIPELINE_INBOX": str(tmp_path / "inbox"),
        "CSV_PIPELINE_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",
    }
    answer = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    exit_code, loaded = answer.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(exit_code), json.loads(loaded)


def test_importing_the_command_line_loads_no_dagster_dask_or_arrow(tmp_path: Path):
    assert heavy_modules_loaded("import csv_pipeline.cli.main\nexit_code = 0", tmp_path) == (0, [])


@pytest.mark.parametrize(
    "argv, exit_code",
    [
        (["--help"], 0),
        (["status", "plays.csv"], 2),  # no webserver: the whole command runs, up to the refused connection
        (["demo-file", "--total-size", "2KB", "--file-name", "demo.csv", "--seed", "1", "--no-progress"], 0),
    ],
)
def test_the_quick_commands_load_no_dagster_dask_or_arrow(argv: list[str], exit_code: int, tmp_path: Path):
    run = (
        "from csv_pipeline.cli.main import main\n"
        f"try:\n    exit_code = main({argv!r})\nexcept SystemExit as done:\n    exit_code = done.code\n"
    )

    assert heavy_modules_loaded(run, tmp_path) == (exit_code, [])
