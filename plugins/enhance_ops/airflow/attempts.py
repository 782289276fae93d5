"""What a shard's last attempt was doing when its process died, so that an image that kills the worker fails alone.

A decoder's native crash (imagecodecs' libavif once corrupted its heap on a sequence and
aborted) or the kernel's OOM killer ends the worker without an exception: nothing is written,
Airflow retries the task, the retry resumes at the same image and dies again, until the
retries are spent and the rest of the shard was never enhanced. So each attempt keeps its
state in the bucket: running until it ends, and, while it takes the images that were in
flight when its predecessor died one at a time, which one it holds. An attempt that finds
its predecessor died holding one image alone fails that image; the shard goes on. A shard its
watchdog killed for making no progress (``watchdog``) says so before it dies, for that image's row.
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
    stalled_s: float | None = None  # how long it had made no progress when its watchdog killed it, if it did


@dataclass
class Attempts:
    store: ObjectStore
    key: str
    holding: int | None = None  # the image this attempt works on alone

    def begin(self) -> LastAttempt:
        """How the last attempt ended; this one is marked running from now."""
        try:
            state = json.loads(self.store.get(self.key))
        except SourceMissingError:
            state = {"running": False}
        self.hold(None)
        if not state["running"]:
            return LastAttempt(False, None)
        return LastAttempt(True, state.get("holding"), state.get("stalled_s"))

    def hold(self, index: int | None) -> None:
        """Say that this attempt now works on image ``index`` alone (None: on several at once)."""
        self.holding = index
        self.store.put(self.key, json.dumps({"running": True, "holding": index}).encode())

    def stall(self, idle_s: float) -> None:
        """This attempt's last word, from its watchdog before it kills the process: no progress for ``idle_s``."""
        self.store.put(self.key, json.dumps({"running": True, "holding": self.holding, "stalled_s": idle_s}).encode())

    def end(self) -> None:
        """The attempt ends in a way the next one is told of (finished, or an exception Airflow logs)."""
        self.store.put(self.key, json.dumps({"running": False}).encode())
