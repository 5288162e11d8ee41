"""The processing engine: read, validate, aggregate and write shards.

No Dagster imports here: the engine is driven by a ``distributed.Client`` and is
testable on its own. The Dagster layer calls the three steps below, one per op:

``inspect_file``  -> ``FilePlan``     (format checks, header detection, byte-range blocks)
``aggregate``     -> ``Aggregation``  (Dask map/reduce: parse+validate blocks, hash-partition
                                       songs into buckets, sum per (Song, Date), sort)
``write_shards``  -> ``Manifest``     (pack sorted buckets into size-bounded shards,
                                       write them and the ``_SUCCESS`` manifest last)

``process_file`` runs all three, for scripts and tests. ``history`` keeps every file's totals
in one Delta Lake table.
"""

from csv_pipeline.engine.errors import InputChangedError, InvalidFileError
from csv_pipeline.engine.pipeline import (
    Aggregation,
    FilePlan,
    Manifest,
    Shard,
    aggregate,
    inspect_file,
    process_file,
    write_shards,
)

__all__ = [
    "Aggregation",
    "FilePlan",
    "InputChangedError",
    "InvalidFileError",
    "Manifest",
    "Shard",
    "aggregate",
    "inspect_file",
    "process_file",
    "write_shards",
]
