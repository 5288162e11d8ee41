"""The exit status of every ``csv-pipeline`` command, defined once."""

SUCCESS = 0
FAILED = 1  # a bad file, or a run that failed
USAGE = 2  # a bad argument, an unreadable input, an unknown file or run, an unreachable service
NOT_FINISHED = 3  # the run has not ended yet
