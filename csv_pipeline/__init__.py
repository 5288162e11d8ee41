"""csv_pipeline: play-count CSV files in, per-(Song, Date) totals out, orchestrated by Dagster on Dask."""
