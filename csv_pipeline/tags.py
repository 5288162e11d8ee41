"""Run tag names shared by the sensor, the ops and the clients that read run status."""

FILE_TAG = "csv_pipeline/file"
VERSION_TAG = "csv_pipeline/version"
MANIFEST_TAG = "csv_pipeline/manifest"
ERROR_TAG = "csv_pipeline/error"
