"""The three layers stay layered: the engine imports neither Dagster nor the rest of the project's
layers, the Dagster code location does not import the command line, and the shared modules
import none of the layers.

Every ``import`` statement counts, at module level or inside a function, so an import moved
into a function to dodge a test is still caught. A fresh interpreter also checks what importing
the engine loads, so a layer reached through a third package is caught too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "csv_pipeline"

FORBIDDEN = {
    "engine": ("dagster", "dagster_dask", "dagster_postgres", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
    "defs": ("csv_pipeline.cli",),
    "settings.py": ("dagster", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
    "inbox.py": ("dagster", "csv_pipeline.defs", "csv_pipeline.cli", "csv_pipeline.definitions"),
}


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``path`` names, relative ones
    resolved against ``package``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
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
    module.write_text("def later():\n    from dagster import asset\n    from ..defs import jobs\n    return asset, jobs\n")

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
