"""Run tag names and metadata labels: what the Dagster layer writes on runs and materializations
and what its clients (the command line, scripts over GraphQL, the tests) read back. Plain
strings, shared by both sides, so that neither spells them on its own."""

# Run tags
FILE_TAG = "csv_pipeline/file"
VERSION_TAG = "csv_pipeline/version"
MANIFEST_TAG = "csv_pipeline/manifest"
ERROR_TAG = "csv_pipeline/error"
RUN_WORKER_TAG = "csv_pipeline/run_worker"  # host, pid and start time of the process executing the run
LAUNCHED_BY_TAG = "csv_pipeline/launched_by"  # host, pid and start time of the process that launched it
# "small" when the sensor saw a file of one engine block, else "large" (the run queue tags a file's
# run launched by hand "large"): the run queue limits large runs
SIZE_TAG = "csv_pipeline/size"
SMALL = "small"
LARGE = "large"

# Metadata of a play_totals materialization that clients read back
ROWS_IN = "rows_in"
ROWS_OUT = "rows_out"
PLAYS_IN = "plays_in"
OUTPUT_FILES = "output_files"
TOP_SONGS = "top_songs"
