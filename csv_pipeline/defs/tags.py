"""Run tag names shared by the sensor, the ops and the clients that read run status."""

FILE_TAG = "csv_pipeline/file"
VERSION_TAG = "csv_pipeline/version"
MANIFEST_TAG = "csv_pipeline/manifest"
ERROR_TAG = "csv_pipeline/error"
RUN_WORKER_TAG = "csv_pipeline/run_worker"  # host, pid and start time of the process executing the run
LAUNCHED_BY_TAG = "csv_pipeline/launched_by"  # host, pid and start time of the process that launched it
