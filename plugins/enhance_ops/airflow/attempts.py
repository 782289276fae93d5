"""What a shard's last attempt was doing when its process died, so that an image that kills the worker fails alone.

A decoder's native crash (imagecodecs' libavif once corrupted its heap on a sequence and
aborted) or the kernel's OOM killer ends the worker without an exception: nothing is written,
Airflow retries the task, the retry resumes at the same image and dies again, until the
retries are spent and the rest of the shard was never enhanced. So each attempt keeps its
state in the bucket: running until it ends, and, while it takes the images that were in
flight when its predecessor died one at a time, which one it holds. An attempt that finds
its predecessor died holding one image alone fails that image; the shard goes on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import SourceMissingError
from ..storage import ObjectStore


@dataclass(frozen=True)
class LastAttempt:
    died: bool  # it neither finished nor failed by an exception
    holding: int | None  # the image it held alone when it died, if it did


@dataclass(frozen=True)
class Attempts:
    store: ObjectStore
    key: str

    def begin(self) -> LastAttempt:
        """How the last attempt ended; this one is marked running from now."""
        try:
            state = json.loads(self.store.get(self.key))
        except SourceMissingError:
            state = {"running": False}
        self.hold(None)
        return LastAttempt(bool(state["running"]), state.get("holding") if state["running"] else None)

    def hold(self, index: int | None) -> None:
        """Say that this attempt now works on image ``index`` alone (None: on several at once)."""
        self.store.put(self.key, json.dumps({"running": True, "holding": index}).encode())

    def end(self) -> None:
        """The attempt ends in a way the next one is told of (finished, or an exception Airflow logs)."""
        self.store.put(self.key, json.dumps({"running": False}).encode())
