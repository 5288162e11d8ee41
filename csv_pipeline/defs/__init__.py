"""The Dagster code location: what the webserver, the daemon and ``csv-pipeline process`` load.

``assets/`` holds ``play_totals`` (one partition per inbox file: validate, aggregate on Dask,
write shards), its asset checks, and ``play_history``; ``resources/`` says where files are and
where step outputs go; ``sensors/`` starts a run per new file and clears up after killed runs.
``jobs.py``, ``partitions.py``, ``executor.py`` (steps on a Dask cluster), ``run_launcher.py``
(a launcher that can tell a dead run worker), ``loggers.py`` and ``tags.py`` complete it;
``csv_pipeline/definitions.py`` assembles everything. The work itself is the engine's: the
modules here say what Dagster needs to know and call it. Nothing here imports the CLI.
"""
