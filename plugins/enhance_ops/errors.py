"""The errors the pipeline reports per image.

Each bad-input failure mode has its own type and a short ``code`` that the ledger stores, so
that an archivist can filter "truncated" from "not an image" without parsing messages.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class EnhanceError(Exception):
    """Base of every error this package raises on purpose."""

    code = "error"


class ImageError(EnhanceError):
    """The input file cannot be turned into pixels."""

    code = "image_error"


class EmptyFileError(ImageError):
    """Zero bytes: usually an interrupted upload or copy."""

    code = "empty_file"


class NotAnImageError(ImageError):
    """The bytes are not an image in any supported format (whatever the extension says)."""

    code = "not_an_image"


class UnsupportedImageError(ImageError):
    """A real image, but in a format or sample type the pipeline does not process."""

    code = "unsupported_image"


class TruncatedImageError(ImageError):
    """The header is fine but the pixel data stops early."""

    code = "truncated"

    @classmethod
    def in_header(cls, fmt: str) -> TruncatedImageError:
        return cls(f"{fmt} file ends before its header is complete: the file is truncated")

    @classmethod
    def in_pixels(cls, fmt: str) -> TruncatedImageError:
        return cls(f"{fmt} pixel data is incomplete: the file is truncated")


class CorruptImageError(ImageError):
    """The header is fine but the pixel data cannot be decoded."""

    code = "corrupt"


class ImageTooLargeError(ImageError):
    """Width × height over the configured pixel limit (decompression-bomb guard)."""

    code = "too_large"


class EncodeError(EnhanceError):
    """The enhanced pixels cannot be written in the requested format."""

    code = "encode_error"


class WeightsError(EnhanceError):
    """A model's weights are missing or not the file the manifest names."""

    code = "weights_error"


class UnsafeKeyError(EnhanceError, ValueError):
    """An object key that could escape its prefix or the working directory (``..``, ``/…``, control bytes)."""

    code = "unsafe_key"


class SourceMissingError(EnhanceError):
    """The master listed for this run is gone from the store (deleted or renamed since discovery)."""

    code = "source_missing"


class SourceUnreadableError(EnhanceError):
    """The master's file cannot be read (an I/O error, no permission): the file, not its pixels, failed."""

    code = "source_unreadable"


class OutputUnwritableError(EnhanceError):
    """A local run's derivative cannot be written (the disk full, a file size limit, no permission)."""

    code = "output_unwritable"


class FileTooLargeError(EnhanceError):
    """The file is over the run's size limit; it is not downloaded."""

    code = "file_too_large"


class OutOfMemoryError(EnhanceError):
    """Enhancing this image ran out of memory (host or GPU); smaller tiles or a bigger worker may help."""

    code = "out_of_memory"


class WorkerDiedError(EnhanceError):
    """The process died with this image in hand twice (a native crash in a decoder, the memory
    limit, or its watchdog when nothing moved, ``watchdog``): a shard's worker, the second time
    with no other image; or two local runs into one folder. It is failed so that the rest of
    the shard or folder is enhanced."""

    code = "worker_died"


class InternalError(EnhanceError):
    """An unexpected failure inside the chain on this image: a bug to report, with the image."""

    code = "internal_error"


def guarded(step: Callable[[Any], T], arg: Any, key: str) -> T:
    """Run one of the Enhancer's steps on one image; any failure of the image itself comes out
    as an ``EnhanceError``, so that it fails that image alone, in a shard or a local run."""
    import torch  # here: a DAG file imports this module to parse

    try:
        return step(arg)
    except EnhanceError:
        raise
    except (MemoryError, torch.OutOfMemoryError) as exc:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise OutOfMemoryError(f"out of memory while enhancing ({type(exc).__name__})") from exc
    except Exception as exc:
        log.exception("unexpected failure on %s", key)
        raise InternalError(f"{type(exc).__name__}: {exc}") from exc
