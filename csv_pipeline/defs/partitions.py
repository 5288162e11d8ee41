"""One partition per inbox file, keyed by its path relative to the inbox (``2026/11/plays.csv``)."""

from dagster import DynamicPartitionsDefinition

INBOX_FILES = "inbox_files"  # the definition's name, as the instance's partition calls take it
inbox_files = DynamicPartitionsDefinition(name=INBOX_FILES)
