"""Which files a local run reads and where each result goes, so that no input is ever overwritten."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO, TypeVar

from . import jpeg_segments
from .formats import HEAD_BYTES, SUFFIX, WRITE_FORMATS, format_of, is_master_name

_SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
# Masters in a format the pipeline does not write: a multi-picture JPEG's primary image stays a
# JPEG (codecs), as does the JPEG a JPEG XL recompressed (jpeg_xl); the others (BMP, GIF, JPEG
# 2000, Netpbm) become PNG.
_WRITTEN_AS = {".mpo": "JPEG", ".jxl": "JPEG"}


P = TypeVar("P", bound=PurePath)


class PlanError(ValueError):
    """The input/output pair cannot be run without risking the originals."""


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    note: str | None = None  # why the target is not the plain name: another input's derivative has that


def tag_name(path: P, digest: str) -> P:
    """``path`` with the first 8 hex digits of ``digest`` before its suffix: a name beside it for
    another master (the digest of its key) or another scan of the same one (of its content)."""
    return path.with_name(f"{path.stem}~{digest[:8]}{path.suffix}")


def find_images(root: Path) -> list[Path]:
    """The masters in ``root``, by name as a nightly run takes them from the bucket
    (``formats.is_master_name``); a link to nothing among them too, to be reported as missing
    rather than passed over."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise PlanError(f"input {root} does not exist")
    return sorted(p for p in root.rglob("*") if is_master_name(p.name) and (p.is_file() or _dangling(p)))


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def target_suffix(source: PurePath, output_format: str | None) -> str:
    """The source's own suffix when it names the output's format (``.jpeg`` stays ``.jpeg``:
    ``x.jpg`` and ``x.jpeg`` are two masters), else the format's (``.png`` for BMP, GIF, JPEG 2000 and Netpbm,
    ``.jpg`` for a multi-picture ``.mpo`` and a JPEG XL)."""
    own = _SUFFIX_FORMAT.get(source.suffix.lower())
    fmt = output_format or own or _WRITTEN_AS.get(source.suffix.lower(), "PNG")
    return source.suffix if own == fmt else SUFFIX[fmt]


def chosen_format(input_path: Path, output_path: Path, requested: str | None) -> str | None:
    """The derivative's format: ``requested`` (--format), or for one image given a file name of
    its own, the format that name's suffix says: ``scan.png`` to ``out.jpg`` wrote PNG data
    under a JPEG name. A name that says another format than ``requested``, or none written, is refused."""
    if _names_a_folder(input_path, output_path):
        return requested  # a folder of outputs, each named by its own format
    named = _SUFFIX_FORMAT.get(output_path.suffix.lower())
    if named is None:
        raise PlanError(f"output {output_path.name}: its suffix names no format written here "
                        f"({', '.join(sorted(_SUFFIX_FORMAT))})")
    if requested and requested != named:
        raise PlanError(f"output {output_path.name} names {named}, but --format asks for {requested}")
    return named


def plan(input_path: Path, output_path: Path, output_format: str | None = None) -> list[Job]:
    """One job per image; refuses any layout where an output could land on an input. Inputs
    whose derivatives would share a name (``x.png`` and ``x.bmp``) each get their own, and a
    name an earlier run gave another input's derivative stays its (as its sidecar says)."""
    input_path, output_path = input_path.resolve(), output_path.resolve()
    sources = find_images(input_path)
    if input_path.is_dir() and output_path.is_relative_to(input_path):
        raise PlanError(f"output {output_path} is inside the input folder {input_path}: choose another folder")
    plain = {source: _plain_target(source, input_path, output_path, output_format) for source in sources}
    inside = {source: source.relative_to(input_path) if input_path.is_dir() else Path(source.name)
              for source in sources}
    owners: dict[Path, PurePath] = {}  # a plain name → the input whose derivative has it, as a nightly shard names them
    for target in set(plain.values()):
        if (made_from := _made_from(target)) is not None:  # this input's, its folder since moved or not; or another's
            owners[target] = next((s for s in sources if plain[s] == target and _ends_with(made_from, inside[s])),
                                  made_from)
    for source in sorted(sources, key=lambda s: (plain[s].suffix != s.suffix, s)):
        owners.setdefault(plain[source], source)
    jobs, seen = [], set()
    for source in sources:
        target, note = plain[source], None
        if (owner := owners[target]) != source:  # its path in the folder tags the name
            target = tag_name(target, hashlib.sha256(str(inside[source]).encode()).hexdigest())
            note = f"named {target.name}: {plain[source].name} is the derivative of {owner}"
        if target == source:
            raise PlanError(f"output {target} would overwrite its own input")
        if target in seen or target in owners and owners[target] != source:
            raise PlanError(f"two inputs would both be written to {target}; rename one of them")
        if blocking := _file_in_the_way(target):
            raise PlanError(f"output {target} cannot be written: {blocking} is a file, not a folder")
        seen.add(target)
        jobs.append(Job(source, target, note))
    return jobs


def sidecar_of(target: Path) -> Path:
    """The JSON record written beside a derivative: its master, settings, models and notes."""
    return target.with_name(target.name + ".json")


def _made_from(target: Path) -> PurePath | None:
    """The input an existing derivative was made from, by its sidecar; None where it has none."""
    try:
        return PurePath(json.loads(sidecar_of(target).read_text())["source"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ends_with(path: PurePath, tail: PurePath) -> bool:
    return path.parts[-len(tail.parts):] == tail.parts


def _plain_target(source: Path, input_path: Path, output_path: Path, output_format: str | None) -> Path:
    """Where the derivative goes when no other input's derivative is named so."""
    suffix = target_suffix(source, output_format or _written_format(source))
    if input_path.is_dir():
        return output_path / source.relative_to(input_path).parent / (source.stem + suffix)
    if _names_a_folder(input_path, output_path):
        return output_path / (source.stem + suffix)
    return output_path


def output_folder(input_path: Path, output_path: Path) -> Path:
    """The folder a run writes into: the output, or the folder of the one image's file it names."""
    return output_path if _names_a_folder(input_path, output_path) else output_path.parent


def _names_a_folder(input_path: Path, output_path: Path) -> bool:
    """The output is a folder of derivatives: a folder is read, or it is one, or its name has no suffix."""
    return not input_path.is_file() or output_path.is_dir() or output_path.suffix == ""


def _written_format(source: Path) -> str | None:
    """The format a derivative of ``source`` is written in, by what its first bytes hold, as
    a nightly run names it once enhanced: a JPEG named ``.tif`` gives ``.jpg``, where it had
    given JPEG data under a TIFF name. None where they cannot be read or name no format we
    write or read (BMP): the name's suffix decides, and the run reports the file if need be."""
    try:
        with source.open("rb") as file:
            fmt = format_of(head := file.read(HEAD_BYTES))
            if fmt == "JPEG" and (frame := jpeg_segments.frame(_jpeg_header(file, head))) and frame.precision > 8:
                return "PNG"  # samples deeper than a JPEG derivative holds (codecs.DecodedImage.output_format)
    except OSError:
        return None
    return None if fmt is None else fmt if fmt in WRITE_FORMATS else "PNG"


def _jpeg_header(file: BinaryIO, head: bytes) -> bytes:
    """Enough of a JPEG for its frame header: most headers fit in 64 KiB; one holding a large
    ICC profile or preview is read on until the frame header, and a damaged one to its end."""
    head += file.read((1 << 16) - len(head))
    while jpeg_segments.frame(head) is None and (more := file.read(len(head))):
        head += more
    return head


def _file_in_the_way(target: Path) -> Path | None:
    """The nearest existing folder above ``target`` where a file stands instead (an output
    folder given as the name of a file): the run stopped there with a traceback."""
    for parent in target.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None
