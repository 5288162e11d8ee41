"""The ``csv-pipeline`` command: ``main`` parses the arguments, one module per command runs it.

A command module imports only the standard library at its top, and what its command needs
(fsspec, the GraphQL client, Dagster and the job) inside the function that runs it, so
``--help``, ``status`` or ``demo-file`` never load Dagster or Dask.
"""
