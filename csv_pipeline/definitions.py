"""The code location: everything Dagster loads, configured from the environment (SPEC section 7)."""

from dagster import Definitions, FilesystemIOManager

from csv_pipeline.assets import play_totals
from csv_pipeline.executor import dask_executor_for
from csv_pipeline.jobs import process_inbox_file
from csv_pipeline.recovery import run_recovery_sensor
from csv_pipeline.resources import PlayFiles
from csv_pipeline.sensors import inbox_sensor
from csv_pipeline.settings import Settings

settings = Settings.from_env()

defs = Definitions(
    assets=[play_totals],
    jobs=[process_inbox_file],
    sensors=[inbox_sensor, run_recovery_sensor],
    resources={
        "play_files": PlayFiles.from_settings(settings),
        # Steps may run on different machines of a Dask cluster: there, CSV_PIPELINE_STEP_OUTPUTS
        # names storage they all reach (s3://...); by default the instance's storage directory.
        "io_manager": FilesystemIOManager(base_dir=settings.step_outputs),
    },
    executor=dask_executor_for(settings),
)
