"""The inbox sensor reading S3's event notifications from an SQS queue, on moto's server.

Between full listings a tick reads only the notified files; the listing, every
``inbox_listing_seconds``, still finds a file whose notification was lost, also across a
daemon restart that lost a tick.
"""

import json
import time

import pytest
from botocore.session import get_session

from csv_pipeline.defs.resources.play_files import PlayFiles
from csv_pipeline.inbox_notifications import created_objects
from csv_pipeline_tests.test_file_keys import s3_play_files, s3_put  # noqa: F401 (fixture)
from csv_pipeline_tests.test_inbox_sensor import ROWS, Daemon, requested
from csv_pipeline_tests.test_large_inbox import CURSOR_LIMIT, fill_inbox

pytest_plugins = ["csv_pipeline_tests.service_fixtures"]

FILES = 1_000
AN_HOUR = 3600


class Notifications:
    """The bucket's ``s3:ObjectCreated:*`` notifications for the inbox, sent to an SQS queue."""

    def __init__(self, play_files: PlayFiles) -> None:
        self.bucket = play_files.inbox.removeprefix("s3://").split("/")[0]
        session = get_session()
        self.s3, self.sqs = session.create_client("s3"), session.create_client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName=f"{self.bucket}-inbox")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def turn_on(self) -> None:
        prefix = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inbox/"}]}}
        configuration = [{"QueueArn": self.queue_arn, "Events": ["s3:ObjectCreated:*"], "Filter": prefix}]
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"QueueConfigurations": configuration}
        )

    def turn_off(self) -> None:
        self.s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration={})


@pytest.fixture
def notifications(s3_play_files: PlayFiles) -> Notifications:  # noqa: F811 (the fixture imported above)
    return Notifications(s3_play_files)


def notified(play_files: PlayFiles, notifications: Notifications, listing_seconds: int) -> PlayFiles:
    return PlayFiles(
        **{**play_files.model_dump(), "inbox_queue": notifications.queue_url, "inbox_listing_seconds": listing_seconds}
    )


def test_between_listings_a_tick_requests_the_notified_files_alone_and_a_listing_finds_the_rest(
    instance,
    s3_play_files,  # noqa: F811 (the fixture imported above)
    notifications,
):
    fill_inbox(s3_play_files.inbox, FILES)
    notifications.turn_on()
    daemon = Daemon(instance, notified(s3_play_files, notifications, AN_HOUR))
    assert len(daemon.tick().run_requests) == FILES  # the first tick lists the whole inbox

    notifications.turn_off()
    s3_put(s3_play_files, "unnotified.csv", ROWS)  # as if its notification were lost
    notifications.turn_on()
    s3_put(s3_play_files, "new.csv", ROWS)
    assert list(requested(daemon.tick())) == ["new.csv"]  # no listing: unnotified.csv is not seen
    assert daemon.tick().run_requests == []
    assert len(daemon.cursor or "") < CURSOR_LIMIT

    daemon.play_files = notified(s3_play_files, notifications, listing_seconds=1)
    time.sleep(1.1)
    assert list(requested(daemon.tick())) == ["unnotified.csv"]  # the listing, due again, finds it
    assert daemon.tick().run_requests == []


def test_a_notified_file_whose_tick_was_lost_in_a_restart_is_requested_by_the_next_listing(
    instance,
    s3_play_files,  # noqa: F811 (the fixture imported above)
    notifications,
):
    notifications.turn_on()
    daemon = Daemon(instance, notified(s3_play_files, notifications, listing_seconds=2))
    daemon.tick()
    saved = daemon.cursor
    s3_put(s3_play_files, "lost.csv", ROWS)
    (first,) = daemon.tick().run_requests
    daemon.cursor = saved  # the daemon died before it saved that tick: its notification is gone

    assert daemon.tick().run_requests == []
    time.sleep(2.1)
    (again,) = daemon.tick().run_requests
    assert (again.partition_key, again.run_key) == ("lost.csv", first.run_key)  # one run key: never two runs


def test_notifications_name_created_objects_with_their_keys_decoded():
    def event(name: str, key: str) -> str:
        return json.dumps(
            {"Records": [{"eventName": name, "s3": {"bucket": {"name": "plays"}, "object": {"key": key}}}]}
        )

    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "plays"})

    assert created_objects(event("ObjectCreated:Put", "inbox%2F2026%2Fa+b%2Bc.csv")) == ["plays/inbox/2026/a b+c.csv"]
    assert created_objects(event("ObjectRemoved:Delete", "inbox%2Fx.csv")) == []
    assert created_objects(test_event) == created_objects("not json") == []
