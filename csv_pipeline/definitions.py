"""The code location: everything Dagster loads, configured from the environment (SPEC section 7)."""

from dagster import Definitions, FilesystemIOManager

from csv_pipeline.assets import play_totals
from csv_pipeline.executor import dask_executor_for
from csv_pipeline.history_asset import PlayHistory, maintain_play_history, maintain_play_history_daily, play_history
from csv_pipeline.jobs import process_inbox_file
from csv_pipeline.resources import PlayFiles
from csv_pipeline.sensors import inbox_sensor
from csv_pipeline.settings import Settings

settings = Settings.from_env()

defs = Definitions(
    assets=[play_totals, play_history],
    jobs=[process_inbox_file, maintain_play_history],
    sensors=[inbox_sensor],
    schedules=[maintain_play_history_daily],
    resources={
        "play_files": PlayFiles.from_settings(settings),
        "history_table": PlayHistory(location=settings.history or ""),
        # Steps may run on different machines of a Dask cluster: there, CSV_PIPELINE_STEP_OUTPUTS
        # names storage they all reach (s3://...); by default the instance's storage directory.
        "io_manager": FilesystemIOManager(base_dir=settings.step_outputs),
    },
    executor=dask_executor_for(settings),
)
