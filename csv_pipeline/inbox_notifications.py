"""New inbox files as S3 announces them: the bucket's event notifications, read from an SQS queue.

Listing an S3 inbox of 100,000 objects takes over a minute (moto; S3 itself returns 1,000 keys
a request), and the sensor did it on every tick. With the bucket's ``s3:ObjectCreated:*``
notifications sent to a queue (``CSV_PIPELINE_INBOX_QUEUE``), a tick reads the few new keys
from the queue instead, and looks each one up (a HEAD request) to describe it exactly as a
listing would. The full listing stays as the safety net, every ``CSV_PIPELINE_INBOX_LISTING_SECONDS``:
a notification can be lost (deleted from the queue by a tick the daemon died before saving,
or never sent), and a file it names is then found by the next listing.
No Dagster imports.
"""

import functools
import json
import re
from typing import Any
from urllib.parse import unquote_plus

from botocore.session import get_session

from csv_pipeline.engine.storage import filesystem
from csv_pipeline.inbox import Inbox, add_entry

MESSAGES_PER_REQUEST = 10  # SQS's largest batch
MAX_MESSAGES_PER_TICK = 1_000  # the rest wait for the next tick


def receive_new_files(queue_url: str, inbox: str) -> Inbox:
    """The inbox entries that the queue's notifications name, as ``list_inbox`` lists them.

    The messages read are deleted from the queue. A named object that is gone again, or that
    is outside the inbox, is left out.
    """
    client = _sqs_client(_region_of(queue_url))
    paths: set[str] = set()
    received = 0
    while received < MAX_MESSAGES_PER_TICK:
        messages = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=MESSAGES_PER_REQUEST, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        received += len(messages)
        for message in messages:
            paths.update(created_objects(message["Body"]))
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(number), "ReceiptHandle": m["ReceiptHandle"]} for number, m in enumerate(messages)],
        )
    fs, root = filesystem(inbox)
    root = root.rstrip("/")
    named = Inbox({}, {}, {})
    for path in sorted(paths):
        if not path.startswith(f"{root}/"):
            continue
        try:
            info = fs.info(path, refresh=True)  # not from a listing s3fs may have cached
        except FileNotFoundError:
            continue
        add_entry(named, fs, path[len(root) + 1 :], path, info)
    return named


def created_objects(body: str) -> list[str]:
    """``bucket/key`` of each object an S3 event notification says was created (none for the
    test event S3 sends when notifications are set up, or a message of another kind)."""
    try:
        records: list[dict[str, Any]] = json.loads(body).get("Records", [])
    except (ValueError, AttributeError):
        return []
    return [
        f"{record['s3']['bucket']['name']}/{unquote_plus(record['s3']['object']['key'])}"
        for record in records
        if str(record.get("eventName", "")).startswith("ObjectCreated:")
    ]


@functools.cache
def _sqs_client(region_name: str | None) -> Any:
    """One SQS client per region for the process: making one loads botocore's service model,
    which a tick every few seconds should not repeat. Clients are thread-safe and refresh
    expiring credentials themselves."""
    return get_session().create_client("sqs", region_name=region_name)


def _region_of(queue_url: str) -> str | None:
    """The region an AWS queue URL names (``https://sqs.<region>.amazonaws.com/...``); None for
    another endpoint, where the environment's region applies (``AWS_DEFAULT_REGION``)."""
    match = re.match(r"https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com/", queue_url)
    return match.group(1) if match else None
