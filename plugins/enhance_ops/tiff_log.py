"""What tifffile says about a damaged TIFF, as notes for the ledger.

tifffile logs a tag it cannot read (a value offset past the end of the file, say) and goes
on without it; Pillow drops the same tag with a bare warning. The file decodes, and the tag
never reaches the derivative: without a note, the task log would be the only trace. The
log lines stay; this adds the ledger note. Records are gathered per thread, since a shard
reads the next master in one thread while the chain runs in another.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import tifffile

_TAG = re.compile(r"TiffTag (\d+) @(\d+)> (.+?)'?\)?$")


class _Gatherer(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        found = getattr(self.local, "found", None)
        if found is not None:
            found.append(record.getMessage())


_GATHERER = _Gatherer()


@dataclass(frozen=True)
class Complaint:
    """One thing tifffile logged: a tag it skipped (``tag``, where its entry is in the file,
    and why) or anything else, as written."""

    message: str
    tag: int | None = None
    at: int | None = None
    why: str = ""

    @classmethod
    def of(cls, message: str) -> Complaint:
        found = _TAG.search(message)
        return cls(message, int(found.group(1)), int(found.group(2)), found.group(3)) if found else cls(message)

    def note(self, page: str = "") -> str:
        """As the ledger says it; ``page`` ("page 2: ") where the master has more than one."""
        if self.tag is None:
            return f"{page}tifffile: {self.message}"
        name = tifffile.TIFF.TAGS.get(self.tag, "unknown")
        return f"{page}TIFF tag {self.tag} ({name}) is damaged ({self.why}) and was skipped: it is not in the derivative"


@contextmanager
def gathered(complaints: list[Complaint]) -> Iterator[None]:
    """Add to ``complaints`` what tifffile logged in this thread meanwhile, each once."""
    tifffile.logger().addHandler(_GATHERER)  # once; again if a logging set-up (a task runner's) dropped it
    _GATHERER.local.found = found = []
    try:
        yield
    finally:
        _GATHERER.local.found = None
        complaints.extend(Complaint.of(message) for message in dict.fromkeys(found))
