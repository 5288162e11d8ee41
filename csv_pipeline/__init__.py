"""csv_pipeline: play-count CSV files in, per-(Song, Date) totals out, orchestrated by Dagster on Dask.

Three layers, one folder each, each importing only the ones before it:

- ``engine/``: reads, validates and aggregates a file on a Dask client and writes the sorted
  shards; also the play history table. No Dagster, no command line: testable alone.
- ``defs/``: the Dagster code location (assets and their checks, resources, sensors, the job,
  its executor, run launcher and loggers), assembled by ``definitions.py``.
- ``cli/``: the ``csv-pipeline`` command, one module per command; only ``process`` loads
  Dagster and the job.

``settings.py`` (configuration from the environment) and ``inbox.py`` (what is in the inbox)
are shared by all three; neither imports Dagster or the command line, and settings reads only
the engine's default sizes (``engine/sizes.py``), so reading it loads no Dask.
"""
