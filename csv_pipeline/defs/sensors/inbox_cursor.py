"""The inbox sensor's cursor, of a bounded size whatever the number of files in the inbox.

It holds the stamp of each entry that arrived ``since`` a time shortly before the newest one
(by the upload window, or less should those entries not fit in ``RECENT_CHARS``), and of all
the older entries only a digest of their keys. A later tick trusts the older entries it lists
when their keys give the same digest; otherwise (one was deleted, or appeared late with an old
time) the sensor asks Dagster which of them already have a partition. It also holds when the
inbox was last listed in full: with notifications (an SQS queue) the ticks in between add the
notified entries to the recent ones.
"""

import hashlib
import json
import math
from dataclasses import dataclass

SKIPPED = ""  # the stamp of a skipped entry: reported once while it stays in the inbox
RECENT_CHARS = 60_000  # room for the recent entries' stamps, so the whole cursor stays under 100 KB


@dataclass(frozen=True)
class InboxCursor:
    since: float | None  # entries that arrived since then are all in ``recent``; None: every entry is
    recent: dict[str, str]  # file key: stamp
    older: str  # digest of the keys of the entries that arrived before ``since``
    listed: float = 0.0  # when the inbox was last listed in full (time.time()); 0: never

    @classmethod
    def read(cls, cursor: str | None) -> "InboxCursor":
        """The stored cursor; one of the earlier format (every file key: its stamp) is all recent."""
        saved = json.loads(cursor) if cursor else {}
        if isinstance(saved.get("recent"), dict):
            return cls(saved["since"], saved["recent"], saved["older"], saved.get("listed", 0.0))
        return cls(None, saved, digest_of_keys([]))

    @classmethod
    def of(
        cls, stamps: dict[str, str], arrived: dict[str, float], window_seconds: float, listed: float
    ) -> "InboxCursor":
        """The cursor after a tick that listed the whole inbox (at ``listed``) and handled every
        entry of ``stamps``."""
        since = _recent_since(stamps, arrived, window_seconds) if stamps else None
        recent = {key: stamp for key, stamp in stamps.items() if since is None or arrived[key] >= since}
        return cls(since, recent, digest_of_keys(stamps.keys() - recent.keys()), listed)

    def with_notified(self, stamps: dict[str, str]) -> "InboxCursor":
        """The cursor after a tick that handled the notified entries ``stamps``. Should the recent
        entries outgrow their room, the next tick lists the whole inbox, which bounds them again."""
        recent = {**self.recent, **stamps}
        listed = self.listed if len(json.dumps(recent)) <= RECENT_CHARS else 0.0
        return InboxCursor(self.since, recent, self.older, listed)

    def dump(self) -> str:
        return json.dumps(
            {"since": self.since, "recent": self.recent, "older": self.older, "listed": self.listed}, sort_keys=True
        )

    def arrived_since(self, arrived: float) -> bool:
        return self.since is None or arrived >= self.since


def digest_of_keys(keys: "set[str] | list[str]") -> str:
    return hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()


def _recent_since(stamps: dict[str, str], arrived: dict[str, float], window_seconds: float) -> float:
    """The upload window before the newest arrival, moved later to the newest entries that fit in
    ``RECENT_CHARS`` (but never past the newest entries themselves, however many share their time)."""
    newest = max(arrived[key] for key in stamps)
    since = newest - window_seconds
    chars = 0
    for key in sorted((key for key in stamps if arrived[key] >= since), key=arrived.__getitem__, reverse=True):
        chars += len(json.dumps(key)) + len(json.dumps(stamps[key])) + 4  # with ": " and ", "
        if chars > RECENT_CHARS:
            return min(math.nextafter(arrived[key], math.inf), newest)
    return since
