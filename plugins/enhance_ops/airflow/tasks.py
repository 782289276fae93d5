"""What each task of the nightly DAG does, as plain functions over an object store.

No Airflow imports here: ``wiring.py`` turns Airflow's context into these calls, and tests
can call them directly. Everything a task writes is keyed by run, day and shard, so a re-run
(a retry, a cleared task, a re-run of the whole date) rewrites the same objects and ledger
parts instead of adding new ones.

Bucket layout::

    incoming/<day>/...                           masters (read only, never modified)
    runs/<run_id>/shards/shard-<n>.json          shard manifests (one day per shard)
    runs/<run_id>/staging/<day>/<relative key>   enhanced images before publishing
    runs/<run_id>/parts/part-<n>.parquet         each shard's ledger rows
    enhanced/<day>/..., quarantine/<day>/...     published derivatives (same relative keys)
    ledger/date=<day>/run=<run_id>/part-<n>.parquet
    reports/<date>/<run_id>.html
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..batch import target_suffix
from ..catalog import Catalog
from ..chain.presets import resolve_preset, scale_overrides
from ..errors import EnhanceError
from ..formats import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from ..storage import ObjectInfo, ObjectStore, safe_key

MAX_DAYS = 366  # one manual run covers at most a year of incoming/<day>/ prefixes


@dataclass(frozen=True)
class RunConfig:
    run_id: str
    logical_date: dt.date
    end_date: dt.date | None = None  # with it, every incoming/<day>/ from logical_date to end_date
    prefix: str | None = None  # an explicit prefix (backfills) instead of incoming/<day>/
    incoming_prefix: str = "incoming/"
    preset: str = "archive-photo"
    scale: int = 4
    overrides: tuple[str, ...] = ()
    gate: tuple[str, ...] = ()
    shard_size: int = 16
    force: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.end_date and not 0 <= (self.end_date - self.logical_date).days < MAX_DAYS:
            raise ValueError(f"end_date {self.end_date} must be on or after {self.logical_date}, within {MAX_DAYS} days")
        if self.prefix is not None:
            safe_key(self.prefix)
        if self.shard_size < 1:
            raise ValueError("shard_size must be at least 1")

    @property
    def run_prefix(self) -> str:
        return f"runs/{self.run_id}/"

    def sources(self) -> Iterator[tuple[str, dt.date]]:
        """(prefix, day) pairs to list; a prefix run files everything under the run's date."""
        if self.prefix is not None:
            yield self.prefix, self.logical_date
            return
        for n in range(((self.end_date or self.logical_date) - self.logical_date).days + 1):
            day = self.logical_date + dt.timedelta(days=n)
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

    resolve_preset(cfg.preset, [*scale_overrides(cfg.scale), *cfg.overrides])
    Thresholds.with_overrides(cfg.gate)


def clean_run_id(raw: str) -> str:
    """Airflow run ids hold ':' and '+'; keys and partition values get a plain form."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_.")[:200]


def discover(store: ObjectStore, catalog: Catalog, cfg: RunConfig) -> dict[str, Any]:
    """List each source prefix, minus what the catalog holds (key and ETag); the listing goes to the bucket.

    Only its key and size travel through XCom, however many scans a night brings.
    """
    found = []
    for prefix, day in cfg.sources():
        known = set() if cfg.force else catalog.known_sources(prefix)
        for item in store.list(prefix):
            if PurePosixPath(item.key).suffix.lower() in IMAGE_SUFFIXES and (item.key, item.etag) not in known:
                relative = item.key[len(prefix):].lstrip("/")
                found.append({**dataclasses.asdict(item), "day": day.isoformat(), "relative": relative})
    key = f"{cfg.run_prefix}discovered.json"
    store.put(key, json.dumps(found, indent=1).encode())
    return {"listing": key, "images": len(found), "bytes": sum(o["size"] for o in found)}


def plan_shards(store: ObjectStore, cfg: RunConfig, listing_key: str) -> list[str]:
    """Write shard manifests (one day each) to the bucket; only their keys travel through XCom."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for obj in json.loads(store.get(listing_key)):
        by_day.setdefault(obj["day"], []).append(obj)
    keys = []
    for day, items in sorted(by_day.items()):
        for start in range(0, len(items), cfg.shard_size):
            n = len(keys)
            key = f"{cfg.run_prefix}shards/shard-{n:05d}.json"
            manifest = {"shard": n, "day": day, "config": cfg.as_dict(), "objects": items[start : start + cfg.shard_size]}
            store.put(key, json.dumps(manifest, indent=1).encode())
            keys.append(key)
    return keys


def staging_key(cfg: RunConfig, day: str, relative: str, output_format: str) -> str:
    suffix = target_suffix(PurePosixPath(relative), output_format)  # type: ignore[arg-type]
    return safe_key(f"{cfg.run_prefix}staging/{day}/{PurePosixPath(safe_key(relative)).with_suffix(suffix)}")


def part_key(cfg: RunConfig, shard: int) -> str:
    return f"{cfg.run_prefix}parts/part-{shard:05d}.parquet"


def enhance_shard(store: ObjectStore, catalog: Catalog, manifest_key: str, device: str = "cpu") -> dict[str, Any]:
    """Enhance every image of one shard into staging; one bad image never stops the others.

    Content already processed by an earlier run under another key is not enhanced again:
    its row (status ``duplicate``) points at the earlier derivative. ``device`` is the
    worker's (``cuda`` on GPU workers), the precision the preset's.
    """
    from ..chain.superres import Inference
    from ..enhance import EnhanceOptions, Enhancer
    from ..quality import ledger

    manifest = json.loads(store.get(manifest_key))
    cfg, shard, day = RunConfig.from_dict(manifest["config"]), int(manifest["shard"]), manifest["day"]
    overrides = (*scale_overrides(cfg.scale), *cfg.overrides)
    precision = resolve_preset(cfg.preset, list(overrides))["inference"]["precision"]
    enhancer = Enhancer(EnhanceOptions(preset=cfg.preset, overrides=overrides, max_pixels=cfg.max_pixels,
                                       inference=Inference(device, precision)))
    common = {"run_id": cfg.run_id, "logical_date": dt.date.fromisoformat(day), "shard": shard}
    rows = []
    for obj in manifest["objects"]:
        info = ObjectInfo(obj["key"], obj["etag"], obj["size"])
        start = time.perf_counter()
        digest = None
        try:
            data = store.get(info.key)
            digest = hashlib.sha256(data).hexdigest()
            earlier = None if cfg.force else catalog.earlier(digest, cfg.run_id)
            if earlier:
                rows.append(ledger.duplicate_row(earlier, **common, source_key=info.key, source_etag=info.etag))
                continue
            result = enhancer.enhance(data)
            target = staging_key(cfg, day, obj["relative"], result.format)
            store.put(target, result.data)
            rows.append(ledger.row_from_record(
                result.record, **common, source_key=info.key, source_etag=info.etag, output_key=target,
                total_s=time.perf_counter() - start,
            ))
        except EnhanceError as exc:
            rows.append(ledger.failed_row(
                exc, **common, source_key=info.key, source_sha256=digest, source_etag=info.etag,
                total_s=time.perf_counter() - start,
            ))
    part = part_key(cfg, shard)
    store.put(part, ledger.to_parquet(rows))
    statuses = [r["status"] for r in rows]
    return {"shard": shard, "part": part, "images": len(rows), "failed": statuses.count("failed"),
            "duplicates": statuses.count("duplicate")}


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
    folder = "enhanced" if row["verdict"] == "passed" else "quarantine"
    relative = PurePosixPath(row["output_key"]).relative_to(f"{cfg.run_prefix}staging")
    return safe_key(f"{folder}/{relative}")


def publish(store: ObjectStore, catalog: Catalog, cfg: RunConfig, parts: list[str]) -> dict[str, int]:
    """Copy each derivative from staging to enhanced/ or quarantine/, then record it in the catalog.

    Copies are whole-object server-side copies of finished files, so a reader never sees a
    partial derivative; re-publishing writes the same keys with the same bytes. Masters are
    only ever read.
    """
    from ..quality import ledger

    moved = {"enhanced": 0, "quarantine": 0}
    for key, rows in zip(parts, _load_parts(store, parts)):
        for row in rows:
            if row["status"] != "ok" or not row["output_key"].startswith(cfg.run_prefix):
                continue  # failed, a duplicate, or published by an earlier attempt of this task
            if row["verdict"] is None:
                raise RuntimeError(f"{key} has rows without a verdict: run quality_gate before publish")
            target = published_key(cfg, row)
            store.copy(row["output_key"], target)
            row["output_key"] = target
            moved[target.split("/", 1)[0]] += 1
        store.put(key, ledger.to_parquet(rows))
        catalog.record(rows)
    return moved


def write_ledger(store: ObjectStore, cfg: RunConfig, parts: list[str], ledger_prefix: str = "ledger/") -> list[str]:
    """Put each shard's final part at its ledger key (day and run partitions): idempotent by run and shard."""
    from ..quality import ledger

    written = []
    for key, rows in zip(parts, _load_parts(store, parts)):
        shard = int(PurePosixPath(key).stem.split("-")[1])
        day = rows[0]["logical_date"] if rows else cfg.logical_date
        target = ledger_prefix + ledger.part_key(day, cfg.run_id, shard)
        store.copy(key, target)
        written.append(target)
    return written


def write_report(store: ObjectStore, cfg: RunConfig, parts: list[str], gate_summary: dict[str, Any]) -> str:
    """The archivists' report for the run, with before/after crops of every enhanced image."""
    from .. import codecs
    from ..quality import gate, report

    rows = [row for shard in _load_parts(store, parts) for row in shard]
    previews = {}
    for i, row in enumerate(rows):
        if row["status"] == "ok":
            before = codecs.decode(store.get(row["source_key"]), max_pixels=cfg.max_pixels)
            after = codecs.decode(store.get(row["output_key"]), max_pixels=2**40)
            previews[i] = report.make_preview(before.pixels, after.pixels)
    outcome = gate.GateReport.from_dict(gate_summary["gate"])
    days = sorted({str(r["logical_date"]) for r in rows}) or [cfg.logical_date.isoformat()]
    html = report.render_report(
        rows, outcome, previews, title=f"Enhancement run {cfg.run_id} ({days[0]}{' to ' + days[-1] if len(days) > 1 else ''})",
        outputs_at=f"s3 bucket, enhanced/<day>/ and quarantine/<day>/ for day {', '.join(days)}",
    )
    key = f"reports/{cfg.logical_date.isoformat()}/{cfg.run_id}.html"
    store.put(key, html.encode("utf-8"))
    return key
