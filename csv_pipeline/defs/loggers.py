"""The runs' terminal log: Dagster's console logger, with each error as one line.

Dagster's own console logger prints the whole stack trace of every failed step and run around
the one sentence a user needs, and logs at DEBUG unless told otherwise. This one logs at INFO
by default and ends an error's line with its sentence (a ``Failure``'s description, else the
first line of the error); the stack traces stay in the run's event log, in the UI.
"""

import logging
import re
import sys

from dagster import Field, InitLoggerContext, logger
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR
from dagster._utils.log import default_date_format_string, default_format_string

_CLASS_PATH = re.compile(r"^\w+(\.\w+)+: ")


class OneLineErrorFormatter(logging.Formatter):
    """Dagster's format, with an event's error as one sentence instead of its stack trace."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        metadata = getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}
        event = metadata.get("dagster_event")
        data = event.event_specific_data if event else None
        error = getattr(data, "error", None)
        if error is not None:
            user_failure = getattr(data, "user_failure_data", None)
            # An error's message starts with its class path (dagster._core.definitions.events.Failure: ...).
            sentence = (user_failure.description if user_failure else None) or _CLASS_PATH.sub(
                "", error.message.strip()
            )
            # Dagster appends the error's display string after a blank line; keep what is before it.
            before_error = record.getMessage().split("\n\n", 1)[0]
            record.msg = f"{before_error} {sentence.splitlines()[0]}"
            record.args = ()
        return super().format(record)


@logger(
    {
        "log_level": Field(str, is_required=False, default_value="INFO", description="The logger's threshold."),
        "name": Field(str, is_required=False, default_value="dagster"),
    },
    description="Dagster's console log at INFO, each error as one line; stack traces stay in the event log.",
)
def console_logger(init_context: InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    console = logging.Logger(config["name"], level=logging.getLevelName(config["log_level"].upper()))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineErrorFormatter(default_format_string(), default_date_format_string()))
    console.addHandler(handler)
    return console
