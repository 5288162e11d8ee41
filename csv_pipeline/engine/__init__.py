"""The processing engine: read, validate, aggregate and write shards.

No Dagster imports here: the engine is driven by a ``distributed.Client`` and is
testable on its own. The Dagster layer calls the three steps below, one per op:

``inspect_file``  -> ``FilePlan``     (format checks, header detection, byte-range blocks)
``aggregate``     -> ``Aggregation``  (Dask map/reduce: parse+validate blocks, hash-partition
                                       songs into buckets, sum per (Song, Date), sort)
``write_shards``  -> ``Manifest``     (pack sorted buckets into size-bounded shards,
                                       write them and the ``_SUCCESS`` manifest last)

``process_file`` runs all three, for scripts and tests. ``history`` keeps every file's totals
in one Delta Lake table; ``merge`` streams a run's sorted shards as one CSV.

The names below are loaded on first use, so that importing one small module of the engine
(``sizes``, ``merge``) does not load Dask and Arrow with ``pipeline``.

Arrow compute functions are called as ``pc.call_function("sum", [...])`` rather than
``pc.sum(...)``: pyarrow generates the latter at import, so type checkers cannot see them.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what __getattr__ returns, for type checkers
    from csv_pipeline.engine.errors import InputChangedError, InvalidFileError
    from csv_pipeline.engine.pipeline import Aggregation, Manifest, Shard, aggregate, process_file, write_shards
    from csv_pipeline.engine.plan import FilePlan, inspect_file

_MODULE_OF = {
    "InputChangedError": "errors",
    "InvalidFileError": "errors",
    "Aggregation": "pipeline",
    "FilePlan": "plan",
    "Manifest": "pipeline",
    "Shard": "pipeline",
    "aggregate": "pipeline",
    "inspect_file": "plan",
    "process_file": "pipeline",
    "write_shards": "pipeline",
}

__all__ = [  # a literal, which type checkers read
    "InputChangedError",
    "InvalidFileError",
    "Aggregation",
    "FilePlan",
    "Manifest",
    "Shard",
    "aggregate",
    "inspect_file",
    "process_file",
    "write_shards",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
