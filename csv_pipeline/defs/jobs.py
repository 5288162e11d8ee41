"""The job that processes one inbox file: the sensor, the UI and ``csv-pipeline process`` launch it."""

from dagster import define_asset_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.storage.tags import RETRY_STRATEGY_TAG

from csv_pipeline.defs.assets.play_history import play_history
from csv_pipeline.defs.assets.play_totals import play_totals

process_inbox_file = define_asset_job(
    "process_inbox_file",
    selection=[play_totals, play_history],
    description=(
        "Validate one inbox file, sum its plays per (Song, Date) on Dask, write the shards, "
        "and make them the file's contribution to the play history."
    ),
    # An automatic retry (of a run whose worker died) runs every step afresh under its own
    # run id, trusting nothing the dead attempt left in scratch: the map and reduce are most of
    # the work anyway, and validate_format reads only the head of the file.
    tags={RETRY_STRATEGY_TAG: "ALL_STEPS"},
)

# The job as ``execute_job`` needs it: a pointer that the Dask workers rebuild from the code location.
PROCESS_INBOX_FILE = ReconstructableRepository.for_module("csv_pipeline.definitions", "defs").get_reconstructable_job(
    process_inbox_file.name
)
