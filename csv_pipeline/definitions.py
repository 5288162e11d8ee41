"""The code location's one ``Definitions``: everything in ``defs/``, configured from the environment."""

from dagster import Definitions

from csv_pipeline.defs.assets.checks import verify_shards
from csv_pipeline.defs.assets.play_history import (
    PlayHistory,
    maintain_play_history,
    maintain_play_history_daily,
    play_history,
)
from csv_pipeline.defs.assets.play_totals import play_totals
from csv_pipeline.defs.dask_logging import quiet_normal_shutdown
from csv_pipeline.defs.executor import dask_executor_for
from csv_pipeline.defs.jobs import process_inbox_file
from csv_pipeline.defs.loggers import console_logger
from csv_pipeline.defs.resources.dask_client import DaskClient
from csv_pipeline.defs.resources.io_managers import StepOutputsIOManager
from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.defs.sensors.inbox_sensor import inbox_sensor
from csv_pipeline.defs.sensors.run_recovery_sensor import run_recovery_sensor
from csv_pipeline.settings import Settings

settings = Settings.from_env()
quiet_normal_shutdown()

defs = Definitions(
    assets=[play_totals, play_history],
    asset_checks=[verify_shards],
    jobs=[process_inbox_file, maintain_play_history],
    sensors=[inbox_sensor, run_recovery_sensor],
    schedules=[maintain_play_history_daily],
    resources={
        "play_files": PlayFiles.from_settings(settings),
        "history_table": PlayHistory(location=settings.history or ""),
        # The ops run inside the executor's Dask workers and use that cluster.
        "dask": DaskClient(),
        # Steps may run on different machines of a Dask cluster: there, CSV_PIPELINE_STEP_OUTPUTS
        # names storage they all reach (s3://...); by default the instance's storage directory.
        "io_manager": StepOutputsIOManager(base_dir=settings.step_outputs),
    },
    executor=dask_executor_for(settings),
    # The "console" logger of a run whose config names it (csv-pipeline process): INFO, errors as one line.
    loggers={"console": console_logger},
)
