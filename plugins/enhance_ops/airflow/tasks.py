"""What each task of the nightly DAG does, as plain functions over an object store.

No Airflow imports here: ``wiring.py`` turns Airflow's context into these calls, and tests
can call them directly. Everything a task writes is keyed by run, day and shard, so a re-run
(a retry, a cleared task, a re-run of the whole date) rewrites the same objects and ledger
parts instead of adding new ones.

Bucket layout::

    incoming/<day>/...                           masters (read only, never modified)
    runs/<run_id>/shards/shard-<n>.json          shard manifests (each master with its day)
    runs/<run_id>/staging/<day>/<relative key>   enhanced images before publishing
    runs/<run_id>/done/shard-<n>/<index>.parquet each finished image's row (a retry resumes from them)
    runs/<run_id>/attempts/shard-<n>.json        whether the shard's last attempt died, and holding what
    runs/<run_id>/parts/part-<n>.parquet         each shard's ledger rows
                                                 (runs/<run_id>/ expires: ``expire_runs``)
    enhanced/<day>/..., quarantine/<day>/...     published derivatives (the same relative keys, tagged
                                                 where another master's derivative has the name)
    ledger/date=<day>/run=<run_id>/part-<n>.parquet
    reports/<date>/<run_id>.html
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..batch import tag_name, target_suffix
from ..catalog import Catalog, settings_sha256
from ..chain.presets import resolve_preset, scale_overrides
from ..errors import EnhanceError, FileTooLargeError, SourceMissingError, WorkerDiedError, guarded
from ..formats import DEFAULT_MAX_PIXELS, is_master_name
from ..storage import ObjectStore, safe_key
from ..watchdog import kill_this_process, watched
from .attempts import Attempts

log = logging.getLogger(__name__)
MAX_DAYS = 366  # one manual run covers at most a year of incoming/<day>/ prefixes
MAX_LOOKBACK_DAYS = 31
RUNS = "runs/"  # each run's bookkeeping (manifests, staging, checkpoints, parts), under its id
ENHANCED, QUARANTINE, LEDGER = "enhanced/", "quarantine/", "ledger/"
OUTPUT_FOLDERS = (ENHANCED, QUARANTINE, RUNS, LEDGER, "reports/")  # what runs write: never masters


@dataclass(frozen=True)
class RunConfig:
    run_id: str
    logical_date: dt.date
    end_date: dt.date | None = None  # with it, every incoming/<day>/ from logical_date to end_date
    prefix: str | None = None  # an explicit folder (backfills) instead of incoming/<day>/
    incoming_prefix: str = "incoming/"
    preset: str = "archive-photo"
    scale: int = 4
    overrides: tuple[str, ...] = ()
    gate: tuple[str, ...] = ()
    shard_size: int = 16
    # a shard also closes before a master that would take it past this many bytes of masters, so
    # a night of large scans or registers spreads over more GPU tasks (a larger master goes alone)
    shard_bytes: int = 2 * 1024**3
    force: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images fail with too_large, before decoding
    max_file_bytes: int = 2 * 1024**3  # larger files fail with file_too_large, without being downloaded
    max_images: int = 100_000  # a run takes at most this many (by key order); the rest wait for the next run
    # also what is new in the previous days' incoming/<day>/ (late uploads, images deferred by
    # max_images), each filed under its own day; not for a prefix or a forced run
    lookback_days: int = 0

    def __post_init__(self) -> None:
        if self.end_date and not 0 <= (self.end_date - self.logical_date).days < MAX_DAYS:
            raise ValueError(f"end_date {self.end_date} must be on or after {self.logical_date}, within {MAX_DAYS} days")
        if self.prefix is not None:  # a folder: "box-1" must not take box-10/ too
            folder = safe_key(self.prefix.rstrip("/") + "/")
            if folder.startswith(OUTPUT_FOLDERS):
                raise ValueError(f"prefix {self.prefix!r} holds this pipeline's own outputs "
                                 f"({', '.join(OUTPUT_FOLDERS)}), not masters")
            object.__setattr__(self, "prefix", folder)
        for name in ("shard_size", "shard_bytes", "max_pixels", "max_file_bytes", "max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.lookback_days <= MAX_LOOKBACK_DAYS:
            raise ValueError(f"lookback_days must be 0-{MAX_LOOKBACK_DAYS}")

    @property
    def run_prefix(self) -> str:
        return f"{RUNS}{self.run_id}/"

    def sources(self) -> Iterator[tuple[str, dt.date]]:
        """(prefix, day) pairs to list, oldest first; a prefix run files everything under the run's date."""
        if self.prefix is not None:
            yield self.prefix, self.logical_date
            return
        first = self.logical_date - dt.timedelta(days=0 if self.force else self.lookback_days)
        for n in range(((self.end_date or self.logical_date) - first).days + 1):
            day = first + dt.timedelta(days=n)
            yield f"{self.incoming_prefix}{day.isoformat()}/", day

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["logical_date"] = self.logical_date.isoformat()
        values["end_date"] = self.end_date.isoformat() if self.end_date else None
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        values = dict(values)
        values["logical_date"] = dt.date.fromisoformat(str(values["logical_date"]))
        values["end_date"] = dt.date.fromisoformat(str(values["end_date"])) if values.get("end_date") else None
        for name in ("overrides", "gate"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


def validate(cfg: RunConfig) -> None:
    """Refuse a bad preset, override or gate setting before any shard starts (ValueError says which)."""
    from ..quality.gate import Thresholds

    resolve_preset(cfg.preset, [*scale_overrides(cfg.scale, preset=cfg.preset), *cfg.overrides])
    Thresholds.with_overrides(cfg.gate)


def clean_run_id(raw: str) -> str:
    """Airflow run ids hold ':' and '+'; keys and partition values get a plain form."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_.")[:200]


def discover(store: ObjectStore, catalog: Catalog, cfg: RunConfig) -> dict[str, Any]:
    """List each source prefix, minus what the catalog holds (key and ETag); the listing goes to the bucket.

    Files named like images are taken (those in formats we cannot read too, so they are
    reported, not skipped); other files (sidecars, checksums) are listed as ignored. Over
    ``max_images`` the rest is deferred to the next run, by key order. A file over
    ``max_file_bytes`` gets a failed row from a run of its own day; a later night looking back
    names it in its report instead of refusing it again, and takes it once the limit allows.
    Only counts and the listing's key travel through XCom, however many scans a night brings.
    """
    found, ignored, oversized = [], [], []
    for prefix, day in cfg.sources():
        known = set() if cfg.force else catalog.known_sources(prefix)
        for item in sorted(store.list(prefix), key=lambda i: i.key):
            name = PurePosixPath(item.key).name
            if item.key.endswith("/") or name.startswith("."):
                continue  # folder markers and hidden files
            if not is_master_name(name):
                ignored.append(item.key)
            elif (item.key, item.etag) in known:
                continue
            elif day < cfg.logical_date and item.size > cfg.max_file_bytes:
                oversized.append(item.key)  # looked back on: it would be refused again; the report names it
            else:
                relative = item.key[len(prefix):].lstrip("/")
                found.append({"key": item.key, "etag": item.etag, "size": item.size, "day": day.isoformat(),
                              "relative": relative})
    taken, deferred = found[: cfg.max_images], found[cfg.max_images :]
    if deferred:
        log.warning("%d images found, max_images is %d: %d deferred to the next run (from %s)",
                    len(found), cfg.max_images, len(deferred), deferred[0]["key"])
    key = f"{cfg.run_prefix}discovered.json"
    listing = {"images": taken, "ignored": ignored, "deferred": [o["key"] for o in deferred], "oversized": oversized}
    store.put(key, json.dumps(listing, indent=1).encode())
    return {"listing": key, "images": len(taken), "bytes": sum(o["size"] for o in taken),
            "ignored": len(ignored), "deferred": len(deferred), "oversized": len(oversized)}


def plan_shards(store: ObjectStore, cfg: RunConfig, listing_key: str) -> list[str]:
    """Write shard manifests to the bucket; only their keys travel through XCom. Each master
    keeps its own day (a run may list several), and a shard may hold more than one."""
    keys = []
    for n, objects in enumerate(_shards(json.loads(store.get(listing_key))["images"], cfg.shard_size, cfg.shard_bytes)):
        key = f"{cfg.run_prefix}shards/shard-{n:05d}.json"
        store.put(key, json.dumps({"shard": n, "config": cfg.as_dict(), "objects": objects}, indent=1).encode())
        keys.append(key)
    return keys


def _shards(items: list[dict[str, Any]], size: int, max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """``size`` masters a shard in listing order (day, then key), and no more than ``max_bytes``
    of them: a shard closes before a master that would take it past that, so a few large
    scans do not hold one GPU task for the night while the others are done. Some masters must
    meet in one shard: those with the same ETag (the same bytes, which the shard's cache then
    enhances once, on whatever days they were listed) and those whose derivatives could take
    the same name (x.png and x.bmp of one day both give x.png: the shard's one writer names
    them in turn, ``_ShardStep.derivative_key``). A shard outgrows ``size`` or ``max_bytes``
    only to keep such a group whole, or for a master larger than ``max_bytes`` alone."""
    root = list(range(len(items)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, obj in enumerate(items):
        for label in (("name", f'{obj["day"]}/{_stem(obj["relative"])}'), ("etag", obj["etag"])):
            if label[1]:
                root[find(i)] = find(first.setdefault(label, i))
    groups: dict[int, list[dict[str, Any]]] = {}
    for i, obj in enumerate(items):  # each group where its first master is
        groups.setdefault(find(i), []).append(obj)
    shard: list[dict[str, Any]] = []
    held = 0  # bytes of masters in the shard
    for group in groups.values():
        weight = sum(o["size"] for o in group)
        if shard and held + weight > max_bytes:
            yield shard
            shard, held = [], 0
        shard += sorted(group, key=_naming_order)
        held += weight
        if len(shard) >= size:
            yield shard
            shard, held = [], 0
    if shard:
        yield shard


def _stem(relative: str) -> str:
    return str(PurePosixPath(relative).with_suffix(""))


def _naming_order(obj: dict[str, Any]) -> tuple[bool, str, str]:
    """Masters whose derivatives keep their own name (x.png) are named before those that take
    another's suffix (x.bmp → x.png), so a plain name goes to the master that has it; then day and key order."""
    path = PurePosixPath(obj["relative"])
    return target_suffix(path, None) != path.suffix, obj["day"], obj["relative"]


def staging_key(cfg: RunConfig, day: str, relative: str, output_format: str) -> str:
    suffix = target_suffix(PurePosixPath(relative), output_format)
    return safe_key(f"{cfg.run_prefix}staging/{day}/{PurePosixPath(safe_key(relative)).with_suffix(suffix)}")


def key_for(plain: str, source_key: str, owner: str | None) -> tuple[str, str | None]:
    """Where a master's derivative goes: ``plain`` when it is free (``owner`` None) or already
    this master's; else ``plain`` with a tag of the master's key before the suffix, and a note
    naming the master whose derivative has ``plain``."""
    if owner in (None, source_key):
        return plain, None
    key = tagged(plain, _key_digest(source_key))
    return key, f"named {PurePosixPath(key).name}: {PurePosixPath(plain).name} is the derivative of {owner}"


def tagged(key: str, digest: str) -> str:
    """``key`` with a tag of ``digest`` (``batch.tag_name``), checked as an object key."""
    return safe_key(str(tag_name(PurePosixPath(key), digest)))


def _key_digest(source_key: str) -> str:
    return hashlib.sha256(source_key.encode()).hexdigest()


def _claimed(catalog: Catalog, key: str, source_key: str) -> str:
    """``key`` claimed for this master, or, where another holds it, this master's tagged name beside it."""
    return key_for(key, source_key, catalog.claim([(key, source_key)])[key])[0]


def beside_copies(catalog: Catalog, wanted: list[tuple[str, str, str]]) -> list[tuple[str, str | None]]:
    """Where each (target key, master, content sha256) goes when masters holding another
    content of it (an earlier scan) are copies that point at the target: a key tagged with its
    content, beside the derivative they use, and a note saying so; else the target."""
    pointing = catalog.duplicates_at(list({target for target, _, _ in wanted}))
    placed: list[tuple[str, str | None]] = []
    for target, source_key, sha256 in wanted:
        others = sorted(c["source_key"] for c in pointing.get(target, []) if c["source_sha256"] != sha256)
        if not others:
            placed.append((target, None))
            continue
        key = _claimed(catalog, tagged(target, sha256), source_key)
        copies = f"{len(others)} copies point" if len(others) > 1 else "a copy points"
        placed.append((key, f"named {PurePosixPath(key).name}: {PurePosixPath(target).name} is the derivative of an "
                            f"earlier scan of this master, which {copies} at "
                            f"({', '.join(others[:3])}{', …' if len(others) > 3 else ''})"))
    return placed


MARK = "enhance-master"  # user metadata of every published derivative: the sha256 of its master's key


def mark(source_key: str) -> dict[str, str]:
    """What a derivative published for this master carries (S3 metadata is ASCII, keys need not
    be), so that an object changed or put at its key by hand is never taken for it."""
    return {MARK: _key_digest(source_key)}


def hand_made(metadata: dict[str, str], source_key: str) -> bool:
    """Whether an object (its user metadata) is not what the pipeline put there for this master."""
    return metadata.get(MARK) != mark(source_key)[MARK]


def changed_by_hand(store: ObjectStore, catalog: Catalog, key: str, source_key: str) -> bool:
    """Whether an object is at ``key`` that the pipeline did not put there for this master as it
    is (retouched by an archivist): one to keep, never to delete or overwrite."""
    found = store.metadata(key)
    return found is not None and _not_ours(store, catalog, key, source_key, found)


def _not_ours(store: ObjectStore, catalog: Catalog, key: str, source_key: str, metadata: dict[str, str]) -> bool:
    """Whether the object at ``key`` (its user metadata) lacks this master's mark and does not
    hold the very bytes its processing wrote there either (a mark lost when the bucket was
    copied without its metadata, or the file uploaded again unchanged, still is ours). One
    GET, only for an object without the mark."""
    if not hand_made(metadata, source_key):
        return False
    recorded = catalog.written(source_key, key)
    return recorded is None or store.sha256(key) != recorded


def clear_of_hand_made(store: ObjectStore, catalog: Catalog, target: str,
                       source_key: str) -> tuple[str, bool, str | None]:
    """Where a master's derivative goes: ``target``, unless the object there lacks this master's
    mark and is not what it wrote there (an archivist's retouched file uploaded over it, a file
    put there before the master's first night), which is kept: then beside it, tagged with the
    master's key, with a note. Also
    whether the key holds this master's own earlier derivative, which is replaced in place."""
    found = store.metadata(target)
    if found is None or not _not_ours(store, catalog, target, source_key, found):
        return target, found is not None, None
    beside = _claimed(catalog, tagged(target, _key_digest(source_key)), source_key)
    key, ours, further = clear_of_hand_made(store, catalog, beside, source_key)  # (that one too may be)
    return key, ours, further or (f"named {PurePosixPath(key).name}: {PurePosixPath(target).name} there was changed "
                                  f"or put there by hand, not by the pipeline for {source_key}: kept as it is")


def part_key(cfg: RunConfig, shard: int) -> str:
    return f"{cfg.run_prefix}parts/part-{shard:05d}.parquet"


PREFETCH = 2  # images fetched and decoded ahead of the one in the chain
MAX_WRITES = 2  # finished images waiting for encode and upload before the chain waits for them
IN_FLIGHT = PREFETCH + 1 + MAX_WRITES  # the images a shard holds at once: one of them, when its process dies, did it
# Larger masters are fetched ahead but decoded only when their turn in the chain comes: a
# decoded 40-Mpx scan is 0.5 GB of float pixels, and holding two ahead would add a third to
# the peak of the one being enhanced (docs/benchmarks.md), to save a second of decoding.
DECODE_AHEAD_PIXELS = 16_000_000


def enhance_shard(store: ObjectStore, catalog: Catalog, manifest_key: str, device: str = "cpu",
                  stall_s: float | None = None) -> dict[str, Any]:
    """Enhance every image of one shard into staging; one bad image never stops the others.

    Three stages overlap: a fetch thread downloads, hashes and decodes the next images; the
    task's own thread runs the chain (the networks); a write thread encodes, uploads and
    checkpoints the previous ones. Each finished image leaves its ledger row as a checkpoint,
    so a retry after a crash (a killed worker, a storage outage) resumes where the shard
    stopped. Storage errors fail the task (Airflow retries it); errors of the image itself
    become ``failed`` rows. A retry after the process died without an exception takes the
    images that were in flight one at a time, and one that the process then dies holding
    alone fails on the next retry (``attempts``); so does one it is stuck on, where nothing
    moves for ``stall_s`` (``watchdog``: the process is killed). ``device`` is the worker's, the
    precision the preset's.
    """
    from ..chain.superres import Inference
    from ..enhance import EnhanceOptions, Enhancer
    from ..quality import ledger

    started = time.perf_counter()
    manifest = json.loads(store.get(manifest_key))
    cfg, shard = RunConfig.from_dict(manifest["config"]), int(manifest["shard"])
    overrides = (*scale_overrides(cfg.scale, preset=cfg.preset), *cfg.overrides)
    precision = resolve_preset(cfg.preset, list(overrides))["inference"]["precision"]
    enhancer = Enhancer(EnhanceOptions(preset=cfg.preset, overrides=overrides, max_pixels=cfg.max_pixels,
                                       inference=Inference(device, precision)))
    done = f"{cfg.run_prefix}done/shard-{shard:05d}/"
    rows = {int(PurePosixPath(o.key).stem): ledger.from_parquet(store.get(o.key))[0] for o in store.list(done)}
    if rows:
        log.info("shard %d: resuming, %d of %d images already done", shard, len(rows), len(manifest["objects"]))
    settings = settings_sha256(ledger.parameters_json(enhancer.chain.settings))
    step = _ShardStep(store, catalog, enhancer, cfg, shard, done, settings)
    step.names.update({r["output_key"]: r["source_key"] for r in rows.values() if r["output_key"]})
    attempts = Attempts(store, f"{cfg.run_prefix}attempts/shard-{shard:05d}.json")
    last = attempts.begin()
    blamed = last.holding is not None and last.holding not in rows  # not when it died just after finishing it
    if blamed:
        log.warning("shard %d: the last attempt %s holding %s alone: it fails", shard,
                    "was stuck" if last.stalled_s else "died", manifest["objects"][last.holding]["key"])
        _collect(step.died(last.holding, manifest["objects"][last.holding], last.stalled_s), rows, shard)
    todo = [i for i in range(len(manifest["objects"])) if i not in rows]
    alone = todo[:IN_FLIGHT] if last.died and not blamed else []
    if alone:
        log.warning("shard %d: the last attempt died without an exception: the %d images it may have held are "
                    "taken one at a time", shard, len(alone))
    try:
        with watched(stall_s, _stalled(attempts, shard)) as beat:
            step.beat = beat
            chain_s = _one_at_a_time(step, attempts, manifest["objects"], alone, rows)
            chain_s += _overlapped(step, manifest["objects"], todo[len(alone):], rows)
    except Exception:  # a storage fault: the task fails by it, and the image in hand is not to blame
        with contextlib.suppress(Exception):  # the storage may be down still: the first fault is the one raised
            attempts.end()
        raise
    attempts.end()
    ordered = [rows[i] for i in sorted(rows)]
    part = part_key(cfg, shard)
    store.put(part, ledger.to_parquet(ordered))
    statuses = [r["status"] for r in ordered]
    wall = time.perf_counter() - started
    return {"shard": shard, "part": part, "images": len(ordered), "failed": statuses.count("failed"),
            "duplicates": statuses.count("duplicate"), "seconds": round(wall, 3), "chain_seconds": round(chain_s, 3)}


def _stalled(attempts: Attempts, shard: int) -> Callable[[float], None]:
    """What the shard's watchdog does when nothing has moved for too long: tell ``attempts``, then kill the worker."""
    def stalled(idle_s: float) -> None:
        log.error("shard %d: no progress for %.0f s (ENHANCE_STALL_S): a decoder or the chain is stuck, and the worker "
                  "kills itself; the retry takes the images that were in flight one at a time", shard, idle_s)
        with contextlib.suppress(Exception):  # the storage may be what is stuck: the kill goes ahead
            attempts.stall(round(idle_s))
        kill_this_process()
    return stalled


def _one_at_a_time(step: _ShardStep, attempts: Attempts, objects: list[dict[str, Any]], alone: list[int],
                   rows: dict[int, dict[str, Any]]) -> float:
    """Fetch, run and write each of ``alone`` before the next, the one in hand told to
    ``attempts``; the chain's seconds."""
    chain_s = 0.0
    for index in alone:
        attempts.hold(index)
        item = step.fetch(index, objects[index])
        item = step.run(item) if item.row is None else item
        chain_s += item.job.chain_s if item.job is not None else 0.0
        _collect(step.write(item), rows, step.shard)
    if alone:
        attempts.hold(None)
    return chain_s


def _overlapped(step: _ShardStep, objects: list[dict[str, Any]], todo: list[int], rows: dict[int, dict[str, Any]]) \
        -> float:
    """Fetch ahead, run the chain, write behind, for the images ``todo``; the chain's seconds."""
    chain_s = 0.0
    with ThreadPoolExecutor(1, thread_name_prefix="fetch") as fetcher, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        fetching = deque(fetcher.submit(step.fetch, i, objects[i]) for i in todo[:PREFETCH])
        writing: deque[Future[dict[str, Any]]] = deque()
        for n, index in enumerate(todo):
            item = fetching.popleft().result()  # a storage fault surfaces here and fails the task
            if n + PREFETCH < len(todo):
                ahead = todo[n + PREFETCH]
                fetching.append(fetcher.submit(step.fetch, ahead, objects[ahead]))
            if item.row is None:
                item = step.run(item)
            if item.job is not None:
                chain_s += item.job.chain_s
            while len(writing) >= MAX_WRITES:
                _collect(writing.popleft().result(), rows, step.shard)
            writing.append(writer.submit(step.write, item))
        while writing:
            _collect(writing.popleft().result(), rows, step.shard)
    return chain_s


def _collect(row: dict[str, Any], rows: dict[int, dict[str, Any]], shard: int) -> None:
    rows[row.pop("_index")] = row
    log.info("shard %d: %s %s in %.2f s%s", shard, row["status"], row["source_key"], row["total_s"],
             f" ({row['error_type']}: {row['error_message']})" if row["status"] == "failed" else "")


@dataclass
class _Item:
    """One master between the shard's stages: either finished (``row``) or on its way (``job``)."""

    index: int
    obj: dict[str, Any]
    busy_s: float = 0.0  # its own time in the stages, not its waits behind other images: the ledger's total_s
    digest: str | None = None
    data: bytes | None = None  # a large master waiting to be decoded (``DECODE_AHEAD_PIXELS``)
    job: Any = None
    row: dict[str, Any] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)  # for its row, however it ends


def _timed(step: Callable[..., _Item]) -> Callable[..., _Item]:
    """A shard stage whose time counts to its item's ``busy_s``, and whose end is progress (``_ShardStep.beat``)."""
    @functools.wraps(step)
    def timed(shard_step: _ShardStep, *args: Any) -> _Item:
        started = time.perf_counter()
        item = step(shard_step, *args)
        item.busy_s += time.perf_counter() - started
        shard_step.beat()
        return item
    return timed


@dataclass
class _ShardStep:
    """The three stages of one image in a shard; only storage faults leave them as exceptions."""

    store: ObjectStore
    catalog: Catalog
    enhancer: Any
    cfg: RunConfig
    shard: int
    done: str
    settings: str  # the digest of the chain's settings, which a copy's earlier derivative must share
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # staging key → the master it is the derivative of
    beat: Callable[[], None] = lambda: None  # progress, for the shard's watchdog: each stage's end and each tile

    def derivative_key(self, plain: str, source_key: str) -> tuple[str, str | None]:
        """The staging key for a master's derivative, and a note when it cannot be the plain one."""
        key, note = key_for(plain, source_key, self.names.setdefault(plain, source_key))
        self.names[key] = source_key
        return key, note

    def _common(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"run_id": self.cfg.run_id, "logical_date": dt.date.fromisoformat(obj["day"]), "shard": self.shard,
                "source_key": obj["key"], "source_etag": obj["etag"]}

    def _failed(self, item: _Item, exc: EnhanceError) -> _Item:
        from ..quality import ledger

        item.job, item.row = None, ledger.failed_row(exc, **self._common(item.obj), source_sha256=item.digest)
        return item

    def died(self, index: int, obj: dict[str, Any], stalled_s: float | None = None) -> dict[str, Any]:
        """The row of an image the worker died holding alone (or was killed stuck on, after
        ``stalled_s`` without progress), checkpointed as any other."""
        how = (f"made no progress for {stalled_s:.0f} s while this image was in hand, twice, the second time with no "
               f"other image (a decoder or the chain stuck on it), and was killed by its watchdog" if stalled_s else
               "died while this image was in hand, twice, the second time with no other image (a decoder's native "
               "crash, or the worker's memory limit)")
        return self.write(self._failed(_Item(index, obj), WorkerDiedError(
            f"the worker process {how}: it is left out so that the rest of the shard is enhanced; try it on its own "
            f"(the command line), and report the file if it {'hangs' if stalled_s else 'dies'} there too")))

    @_timed
    def fetch(self, index: int, obj: dict[str, Any]) -> _Item:
        """Download, hash, look for an earlier processing of the same content, decode (unless large)."""
        from .. import codecs
        from ..quality import ledger

        item = _Item(index, obj)
        try:
            if obj["size"] > self.cfg.max_file_bytes:
                raise FileTooLargeError(
                    f"{obj['size']:,} bytes exceeds the run's limit of {self.cfg.max_file_bytes:,} (max_file_bytes)")
            data = self.store.get(obj["key"])
            item.digest = hashlib.sha256(data).hexdigest()
            earlier = None if self.cfg.force else self.catalog.earlier(item.digest, self.cfg.run_id, self.settings)
            if earlier and earlier["output_key"] and not self.store.exists(earlier["output_key"]):
                item.notes.append(f"{earlier['output_key']}, the derivative of the same content made by run "
                                  f"{earlier['run_id']}, is not in the bucket any more: enhanced again")
                earlier = None  # deleted by hand: a copy must not point at nothing
            if earlier:
                item.row = ledger.duplicate_row(earlier, **self._common(obj))
                return item
            staging_key(self.cfg, obj["day"], obj["relative"], "PNG")  # the key is checked before any work
            width, height = guarded(codecs.oriented_size, data, obj["key"])
            if width * height > DECODE_AHEAD_PIXELS:
                item.data = data
            else:
                item.job = self._start(item, data)
        except EnhanceError as exc:
            return self._failed(item, exc)
        return item

    def _start(self, item: _Item, data: bytes) -> Any:
        return guarded(lambda raw: self.enhancer.start(raw, item.digest), data, item.obj["key"])

    @_timed
    def run(self, item: _Item) -> _Item:
        """Decode a large master now if it was left encoded, then run the chain."""
        from ..chain.pipeline import TileProgress

        try:
            if item.job is None:
                data, item.data = item.data, None
                assert data is not None
                item.job = self._start(item, data)
            beats = TileProgress(lambda _tiles: self.beat(), self.beat, lambda _stage: self.beat())
            item.job = guarded(lambda job: self.enhancer.run(job, beats), item.job, item.obj["key"])
        except EnhanceError as exc:
            return self._failed(item, exc)
        return item

    def write(self, item: _Item) -> dict[str, Any]:
        """Encode, upload to staging, checkpoint the row; returns the row (with its index)."""
        from ..quality import ledger

        started = time.perf_counter()
        if item.job is not None:
            try:
                result = guarded(self.enhancer.finish, item.job, item.obj["key"])
                target, note = self.derivative_key(staging_key(self.cfg, item.obj["day"], item.obj["relative"], result.format),
                                         item.obj["key"])
            except EnhanceError as exc:
                self._failed(item, exc)
            else:
                self.store.put(target, result.data)
                item.row = ledger.row_from_record(result.record, **self._common(item.obj), output_key=target)
                item.row["notes"] += [note] if note else []
        assert item.row is not None
        item.row["notes"] += item.notes
        item.row["total_s"] = item.busy_s + time.perf_counter() - started
        self.store.put(f"{self.done}{item.index:06d}.parquet", ledger.to_parquet([item.row]))
        self.beat()
        return {**item.row, "_index": item.index}


def _load_parts(store: ObjectStore, parts: list[str]) -> list[list[dict[str, Any]]]:
    from ..quality import ledger

    return [ledger.from_parquet(store.get(p)) for p in parts]


def quality_gate(store: ObjectStore, cfg: RunConfig, parts: list[str]) -> dict[str, Any]:
    """Judge the whole run's rows together and write each shard's verdicts back to its part."""
    from ..quality import gate, ledger

    shards = _load_parts(store, parts)
    outcome = gate.evaluate([row for rows in shards for row in rows], gate.Thresholds.with_overrides(cfg.gate))
    for key, rows in zip(parts, shards):
        store.put(key, ledger.to_parquet(rows))
    counts = {v: sum(r["verdict"] == v for rows in shards for r in rows) for v in ledger.VERDICTS}
    return {"counts": counts, "gate": outcome.as_dict()}


def published_key(cfg: RunConfig, row: dict[str, Any]) -> str:
    folder = ENHANCED if row["verdict"] == "passed" else QUARANTINE
    relative = PurePosixPath(row["output_key"]).relative_to(f"{cfg.run_prefix}staging")
    return safe_key(f"{folder}{relative}")


def publish(store: ObjectStore, catalog: Catalog, cfg: RunConfig, parts: list[str]) -> dict[str, int]:
    """Copy each derivative from staging to enhanced/ or quarantine/, then record it in the catalog.

    A key that the catalog gives to another master (another run's master of the same name and
    date, published or being published now) is not overwritten: the derivative gets a tagged
    key instead. Keys are claimed before the first copy. Nor is the derivative of an earlier
    scan of the same master that copies of that scan point at (``beside_copies``).

    Copies are whole-object server-side copies of finished files, so a reader never sees a
    partial derivative; re-publishing writes the same keys with the same bytes. Masters are
    only ever read.

    A derivative that a master's new one supersedes while it awaits review (the master was
    re-scanned, or processed again by a forced run) is deleted once the new one is recorded,
    and the new row says so: no one can release or reject it any more (``review`` refuses a
    superseded key), so it would only sit in quarantine/. One that copies of its content point
    at stays, for a decision that is theirs alone (``review``). A derivative published over the
    master's earlier one says so.
    """
    from ..quality import ledger

    moved = {"enhanced": 0, "quarantine": 0}
    loaded = _load_parts(store, parts)
    enhanced = {r["source_key"] for rows in loaded for r in rows if r["status"] == "ok"}  # derivatives of their own
    for key, rows in zip(parts, loaded):
        todo = [r for r in rows if r["status"] == "ok" and r["output_key"].startswith(cfg.run_prefix)]
        # (the rest: failed, duplicates, or published by an earlier attempt of this task)
        if any(r["verdict"] is None for r in todo):
            raise RuntimeError(f"{key} has rows without a verdict: run quality_gate before publish")
        plains = [published_key(cfg, r) for r in todo]
        # another run's master may hold a name (a backfill's x.jpg, a night's x.jpg), even one publishing now
        holders = catalog.claim([(plain, r["source_key"]) for plain, r in zip(plains, todo)])
        before = catalog.latest([r["source_key"] for r in todo])
        held = _awaiting_review(catalog, before)
        named = [key_for(plain, r["source_key"], holders[plain]) for plain, r in zip(plains, todo)]
        placed = beside_copies(catalog, [(key, r["source_key"], r["source_sha256"]) for (key, _), r in zip(named, todo)])
        superseded, remade = [], []
        for row, (_, note), (target, beside) in zip(todo, named, placed):
            target, ours, by_hand = clear_of_hand_made(store, catalog, target, row["source_key"])
            row["notes"] = [*row["notes"], *(n for n in (note, beside, by_hand) if n)]
            old = held.get(row["source_key"])
            if old not in (None, target):
                if changed_by_hand(store, catalog, old, row["source_key"]):
                    row["notes"].append(f"supersedes {old}, which awaited review: kept, as it was changed by hand "
                                        "after the pipeline put it there")
                else:
                    superseded.append(old)
                    row["notes"].append(f"supersedes {old}, which awaited review: deleted")
            if row["source_key"] in before and ours:  # processed again: its own name, in place
                earlier = before[row["source_key"]]
                maker = earlier["run_id"] if earlier["output_key"] == target else None
                row["notes"].append(replaces_note(target, maker))
                remade.append((row, maker))
            store.copy(row["output_key"], target, mark(row["source_key"]), size=row.get("output_bytes"))
            row["output_key"] = target
            moved[target.split("/", 1)[0]] += 1
        rows += copies_following(catalog, remade, enhanced)
        store.put(key, ledger.to_parquet(rows))
        catalog.record(rows)
        store.delete(superseded)
    return moved


def replaces_note(target: str, run_id: str | None) -> str:
    """The note of a derivative published over its master's earlier one (a forced run, a re-scan, a release)."""
    return f"replaces the earlier derivative at {target}" + (f", made by run {run_id}" if run_id else "")


def copies_following(catalog: Catalog, remade: list[tuple[dict[str, Any], str | None]],
                     enhanced: Collection[str] = ()) -> list[dict[str, Any]]:
    """Rows for the copies elsewhere (masters recorded as duplicates of the same content) that
    point at a derivative made again in place (forced, or released over the master's earlier
    one): their last rows name the processing whose bytes are gone, and its settings, code and
    weights may not be the new one's. ``remade``: each new row, at its key, with the run that
    made the derivative it replaced, where known; copies among the ``enhanced`` masters have
    derivatives of their own now."""
    from ..quality import ledger

    pointing = catalog.duplicates_at([made["output_key"] for made, _ in remade])
    rows = []
    for made, maker in remade:
        for copy in pointing.get(made["output_key"], []):
            if copy["source_sha256"] != made["source_sha256"] or copy["source_key"] in enhanced:
                continue  # (a re-scan's derivative is put beside copies of the earlier scan: beside_copies)
            row = ledger.duplicate_row(made, run_id=made["run_id"], logical_date=copy["logical_date"], shard=made["shard"],
                                       source_key=copy["source_key"], source_etag=copy["source_etag"])
            replaced = f", replacing the one run {maker} made" if maker else ""
            row["notes"].append(f"its derivative {made['output_key']} was made again by run {made['run_id']}{replaced}")
            rows.append(row)
    return rows


def _awaiting_review(catalog: Catalog, latest: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The quarantined derivative each of these masters (their latest processing) has
    awaiting review, where no copy of the same content points at it."""
    held = {source: entry["output_key"] for source, entry in latest.items()
            if (entry["status"], entry["verdict"]) == ("ok", "quarantined")}
    pointed_at = catalog.duplicates_at(list(held.values()))
    return {source: key for source, key in held.items() if key not in pointed_at}


def write_ledger(store: ObjectStore, cfg: RunConfig, parts: list[str], ledger_prefix: str = LEDGER) -> list[str]:
    """Put each shard's final rows at their ledger keys (day and run partitions; a shard with
    masters of several days has a part in each): idempotent by run, day and shard."""
    written = []
    for key, rows in zip(parts, _load_parts(store, parts)):
        shard = int(PurePosixPath(key).stem.split("-")[1])
        written += put_ledger_parts(store, rows, cfg.run_id, shard, cfg.logical_date, ledger_prefix)
    return written


def put_ledger_parts(store: ObjectStore, rows: list[dict[str, Any]], run_id: str, shard: int, empty_day: dt.date,
                     ledger_prefix: str = LEDGER) -> list[str]:
    """One part for each day the rows are filed under (no rows: an empty part under ``empty_day``)."""
    from ..quality import ledger

    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(row["logical_date"], []).append(row)
    written = []
    for day, day_rows in sorted(by_day.items()) or [(empty_day, [])]:
        target = ledger_prefix + ledger.part_key(day, run_id, shard)
        store.put(target, ledger.to_parquet(day_rows))
        written.append(target)
    return written


# A featured derivative is read whole to cut its before/after crop: past this it is named instead,
# so that one document of many large pages cannot take the report task's memory.
PREVIEW_MAX_BYTES = 2 * 10**9


def write_report(store: ObjectStore, catalog: Catalog, cfg: RunConfig, parts: list[str],
                 gate_summary: dict[str, Any], failed_shards: tuple[list[str], int] = ([], 0)) -> str:
    """The archivists' report for the run, with before/after crops of every enhanced image,
    and the size of the whole review queue (this run's and earlier nights'). ``failed_shards``:
    the manifests of the shards that failed past their retries, and how many were planned."""
    from ..quality import gate, report

    rows = [row for shard in _load_parts(store, parts) for row in shard]
    previews, unshown = _previews(store, cfg, rows, report.featured(rows))
    outcome = gate.GateReport.from_dict(gate_summary["gate"])
    following = report.following_rows(rows)  # filed under their days, which the run did not take
    days = sorted({str(r["logical_date"]) for i, r in enumerate(rows) if i not in following})
    days = days or [cfg.logical_date.isoformat()]
    html = report.render_report(
        rows, outcome, previews, title=f"Enhancement run {cfg.run_id} ({days[0]}{' to ' + days[-1] if len(days) > 1 else ''})",
        outputs_at=f"s3 bucket, enhanced/<day>/ and quarantine/<day>/ for day {', '.join(days)}",
        remarks=[*_failed_shards_remark(store, *failed_shards),
                 *_listing_remarks(json.loads(store.get(f"{cfg.run_prefix}discovered.json")), cfg),
                 *_queue_remark(catalog, cfg.run_id), *unshown],
        ledger_at=f"the ledger (ledger/date=<day>/run={cfg.run_id}/)",
    )
    key = f"reports/{cfg.logical_date.isoformat()}/{cfg.run_id}.html"
    store.put(key, html.encode("utf-8"))
    return key


def _previews(store: ObjectStore, cfg: RunConfig, rows: list[dict[str, Any]],
              featured: list[int]) -> tuple[dict[int, Any], list[str]]:
    """The before/after crops of the featured rows, and remarks naming those left without:
    a master deleted or replaced since its shard read it (the crops would pair another scan
    with the derivative), a derivative gone (decided on already), or one over
    ``PREVIEW_MAX_BYTES``."""
    from .. import codecs
    from ..quality import report

    previews, unshown, large = {}, [], []
    for i in featured:
        row = rows[i]
        size = store.size(row["output_key"])
        if size is not None and size > PREVIEW_MAX_BYTES:
            large.append(f"{row['output_key']} ({size / 1e9:.1f} GB)")
            continue
        master = _if_there(store, row["source_key"])
        changed = master is not None and hashlib.sha256(master).hexdigest() != row["source_sha256"]
        derivative = None if master is None or changed or size is None else _if_there(store, row["output_key"])
        if derivative is None:
            why = "master gone" if master is None else "master replaced" if changed else "derivative gone"
            unshown.append(f"{row['source_key']} ({why})")
            continue
        page = report.shown_page(row)  # a multi-page master's weakest: its derivative holds the pages alone
        before = codecs.decode(master, max_pixels=cfg.max_pixels, samples=True,
                               frame=codecs.pages(master).frames[page - 1] if page > 1 else 0)
        after = codecs.decode(derivative, max_pixels=2**40, samples=True, frame=page - 1)
        previews[i] = report.make_preview(before.pixels, after.pixels)
    remarks = [f"No before/after for {len(unshown)} {'image' if len(unshown) == 1 else 'images'} changed or gone "
               f"since the run read them: {_named(unshown, 20)}"] if unshown else []
    if large:
        remarks.append(f"No before/after for {len(large)} {'derivative' if len(large) == 1 else 'derivatives'} over "
                       f"{PREVIEW_MAX_BYTES / 1e9:.1f} GB, which the report does not read whole to show a crop "
                       f"(open them from the bucket): {_named(large, 20)}")
    return previews, remarks


def _if_there(store: ObjectStore, key: str) -> bytes | None:
    """An object's bytes, or None where it is gone (other storage faults still fail the task, to be retried)."""
    try:
        return store.get(key)
    except SourceMissingError:
        return None


def _failed_shards_remark(store: ObjectStore, manifests: list[str], planned: int) -> list[str]:
    """The images of the shards that failed past their retries, which are in neither this report
    nor the ledger nor the catalog, and what becomes of them."""
    if not manifests:
        return []
    keys = [obj["key"] for manifest in manifests for obj in json.loads(store.get(manifest))["objects"]]
    images = f"{len(keys)} {'image was' if len(keys) == 1 else 'images were'}"
    return [f"{len(manifests)} of this run's {planned} shards failed past their retries (a storage or worker "
            f"fault, in their task logs), so {images} not enhanced and {'is' if len(keys) == 1 else 'are'} in neither "
            f"this report nor the ledger: {_named(keys, 20)}. A later night looking back over their day takes them "
            f"again; clearing the failed enhance_shard tasks, with their downstream tasks, finishes this run."]


def _listing_remarks(listing: dict[str, Any], cfg: RunConfig, named: int = 20) -> list[str]:
    """What discovery left out, in words, so no file goes unmentioned."""
    remarks = []
    if listing["deferred"]:
        remarks.append(f"{len(listing['deferred'])} more images were found than this run takes (max_images "
                       f"{cfg.max_images}); they wait for the next run, starting with {listing['deferred'][0]}.")
    if listing.get("oversized"):  # (a listing written before this was listed has none)
        count = len(listing["oversized"])
        remarks.append(f"{count} {'image' if count == 1 else 'images'} of earlier days "
                       f"{'is' if count == 1 else 'are'} over this run's max_file_bytes ({cfg.max_file_bytes:,} bytes), "
                       f"left for a run with a higher limit: {_named(listing['oversized'], named)}")
    if listing["ignored"]:
        remarks.append(f"{len(listing['ignored'])} files are not images by their names and were left alone: "
                       f"{_named(listing['ignored'], named)}")
    return remarks


def _queue_remark(catalog: Catalog, run_id: str) -> list[str]:
    """The whole review queue's size, earlier nights' included."""
    from ..review import awaiting, queue_size

    queue = awaiting(catalog)
    if not queue:
        return []
    runs = {r["run_id"] for r in queue}
    return [f"In all, {queue_size(queue)}, from {len(runs)} {'run' if len(runs) == 1 else 'runs'}"
            f"{' (this one included)' if run_id in runs else ''}: python -m enhance_ops review-queue lists them."]


def _named(keys: list[str], most: int) -> str:
    return ", ".join(keys[:most]) + (" …" if len(keys) > most else "")


def expire_runs(store: ObjectStore, cfg: RunConfig, keep_days: int, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete the bookkeeping of earlier finished runs left untouched for ``keep_days`` (0: keep all).

    What a finished run (one with its report, so its rows are in the ledger) leaves under
    ``runs/<run>/`` is needed only to re-run its tasks: its derivatives are published, its
    rows are in the ledger. Its staging copies would otherwise double the bucket's
    derivatives night after night. A run that never finished keeps its parts, which may hold
    the only record of what it published; this run keeps its own.
    """
    if keep_days <= 0:
        return {"runs": 0, "objects": 0}
    now = now or dt.datetime.now(dt.timezone.utc)
    finished = {PurePosixPath(o.key).stem for o in store.list("reports/")  # reports/<date>/<run>.html, not fixity/
                if o.key.endswith(".html") and o.key.count("/") == 2}
    by_run: dict[str, list[str]] = {}
    newest: dict[str, dt.datetime] = {}
    for obj in store.list(RUNS):
        run = obj.key[len(RUNS):].split("/", 1)[0]
        by_run.setdefault(run, []).append(obj.key)
        stamp = obj.modified or now
        newest[run] = max(newest.get(run, stamp), stamp)
    expired = [run for run in by_run
               if run != cfg.run_id and run in finished and now - newest[run] > dt.timedelta(days=keep_days)]
    for run in expired:
        store.delete(by_run[run])
        log.info("expired the bookkeeping of run %s (%d objects)", run, len(by_run[run]))
    return {"runs": len(expired), "objects": sum(len(by_run[run]) for run in expired)}
