"""One partition per inbox file, keyed by its path relative to the inbox (``2026/11/plays.csv``)."""

from dagster import DynamicPartitionsDefinition

inbox_files = DynamicPartitionsDefinition(name="inbox_files")
