"""``python -m enhance_ops``: enhance local files, run the pipeline locally, fetch models, keep the catalog."""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import codecs
from .batch import Job, PlanError, chosen_format, output_folder, plan, sidecar_of
from .chain.presets import PRECISIONS, PRESETS, SCALES, resolve_preset, scale_overrides
from .chain.superres import Inference, Tiling
from .airflow.tasks import LEDGER, clean_run_id
from .errors import (EnhanceError, OutputUnwritableError, SourceMissingError, SourceUnreadableError, WorkerDiedError,
                     guarded)
from .formats import DEFAULT_MAX_PIXELS, WRITE_FORMATS
from .run_journal import DeadRun, Journal
from .storage import BucketError, S3Store
from .watchdog import kill_this_process, stall_limit, watched

if TYPE_CHECKING:  # torch loads only when a command needs it
    from .enhance import Enhancer, EnhanceResult
    from .quality.gate import GateReport
    from .quality.report import Preview


def _whole(least: int, most: int | None = None) -> Callable[[str], int]:
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least or most is not None and value > most:
            bounds = f"from {least} to {most}" if most is not None else f"of at least {least}"
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {bounds}")
        return value

    return whole


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _run_id(text: str) -> str:
    """A run id names the ledger's partition (run=<id>): a '/' would nest it, '..' climb out of it."""
    if not text or clean_run_id(text) != text:
        raise argparse.ArgumentTypeError(f"{text!r}: a run id holds letters, digits and '.', '_', '-' inside only")
    return text


def _enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .enhance import EnhanceOptions, Enhancer

    overrides = list(args.set)
    models = args.model.split(",") if args.model else None
    if args.scale:
        overrides += scale_overrides(args.scale, models, args.preset)
    elif models:
        overrides.append("superres.models=" + json.dumps(models))
    if args.precision:
        overrides.append(f"inference.precision={args.precision}")
    try:
        _check_run_files(args)
        output_format = chosen_format(Path(args.input), Path(args.output), args.format)
        jobs = plan(Path(args.input), Path(args.output), output_format)
        settings = resolve_preset(args.preset, overrides)
        stall_s = stall_limit(args.stall_s)
        options = EnhanceOptions(
            preset=args.preset,
            overrides=tuple(overrides),
            tiling=Tiling(args.tile, args.pad, args.overlap),
            inference=Inference(args.device, settings["inference"]["precision"]),
            max_pixels=args.max_pixels,
            output_format=output_format,
        )
        enhancer = Enhancer(options)
    except (PlanError, ValueError, KeyError, EnhanceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not jobs:
        print(f"no images found in {args.input}", file=sys.stderr)
        return 2
    chain = enhancer.chain
    pages = "black-and-white and text pages" if chain.settings["superres"]["text_pages"] else "black-and-white pages"
    bitonal = "" if chain.bitonal_names == chain.model_names else f" ({pages}: {' then '.join(chain.bitonal_names)})"
    print(f"{len(jobs)} image(s), preset {chain.preset_name}, x{chain.scale} with {' then '.join(chain.model_names)}"
          f"{bitonal}", file=sys.stderr)
    try:
        journal = Journal(output_folder(Path(args.input), Path(args.output)))
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    judged = bool(args.ledger or args.report or args.gate)
    run = _RunLog(args.run_id or dt.datetime.now(dt.timezone.utc).strftime("local-%Y%m%dT%H%M%SZ"),
                  args.date or dt.date.today(), judged, journal if args.ledger or args.report else None)
    if journal.dead is not None:
        run.remarks.append(_finish_dead_run(journal.dead, args.output, run.run_id, args.report))
    ledger_at, report_at = (str(Path(path).resolve()) if path else None for path in (args.ledger, args.report))
    journal.begin(run.run_id, run.logical_date, ledger_at, args.gate, report=report_at)
    done, skipped, failed, interrupted = 0, 0, [], False
    with _interrupt_on_sigterm(), watched(stall_s, _stalled) as beat:
        try:
            for job in tqdm(jobs, desc="images", unit="img", disable=args.quiet):
                if job.target.exists() and not args.overwrite:
                    skipped += 1
                    tqdm.write(f"skip {job.source.name}: {job.target} exists (use --overwrite to replace it)")
                    continue
                start, data = time.perf_counter(), None
                try:
                    data = _read(job.source)
                    with _in_hand(journal, job, data):
                        result = guarded(lambda raw: _run_job(enhancer, job, raw, args.quiet, beat), data,
                                         str(job.source))
                        run.enhanced(job, data, result, time.perf_counter() - start)
                    done += 1
                except EnhanceError as exc:
                    failed.append((job, exc))
                    run.failed(job, data, exc, time.perf_counter() - start)
                    tqdm.write(f"FAILED {job.source}: [{exc.code}] {exc}")
                beat()
        except KeyboardInterrupt:  # the images done are judged and kept in the ledger all the same
            interrupted = True
    left = f", {len(jobs) - done - skipped - len(failed)} not done: interrupted" if interrupted else ""
    print(f"{done} enhanced, {skipped} skipped, {len(failed)} failed{left}; outputs in {Path(args.output).resolve()}")
    if judged:
        try:
            outcome = run.judge(args.gate, args.ledger, Path(args.output))
            if args.report:
                run.report(outcome, args.report, Path(args.output))
        except OSError as exc:
            journal.leave()
            kept = f"; its rows are kept in {journal.root}, and the next run into the folder writes them" \
                if args.ledger and not journal.broken else ""
            print(f"error: the ledger or report cannot be written: {exc.strerror or exc}{kept}", file=sys.stderr)
            return 2
    journal.close()
    return 130 if interrupted else 1 if failed else 0


@contextlib.contextmanager
def _in_hand(journal: Journal, job: Job, data: bytes) -> Iterator[None]:
    """The journal says this image is in hand while the block works on it, so that the next run
    knows what a run the process died in held; content two runs died holding is failed."""
    from tqdm import tqdm

    digest = hashlib.sha256(data).hexdigest()
    if journal.left_out(digest):
        raise WorkerDiedError(
            f"{journal.deaths(digest)} runs into this folder died while enhancing this image (a decoder's native "
            f"crash or hang, or the memory limit): it is left out so that the rest is enhanced; try it on its own, and "
            f"report the file if it dies there too (delete {journal.root} to have runs into this folder try it again)")
    if journal.deaths(digest):
        tqdm.write(f"{job.source}: the last run into this folder died while enhancing it; trying it once more")
    journal.hold(job.source, digest)
    try:
        yield
    finally:  # whatever came of it, it did not take the process down
        journal.release(digest)


def _finish_dead_run(dead: DeadRun, output: str, run_id: str, report_at: str | None) -> str:
    """The ledger and report of a run into this folder that died (a native crash, the OOM
    killer, SIGKILL) and so never wrote them: its rows, kept as it went, judged and written as
    its own. Its report goes where it was to go, unless this run's report (``report_at``) is to
    go there too. What this run's report says of it."""
    how = f"died while enhancing {dead.in_hand} (a native crash, a hang, the memory limit or a kill)" \
        if dead.in_hand else "did not finish (its process died, or its ledger or report could not be written)"
    print(f"the last run into this folder, {dead.run_id}, {how}; the images it finished are kept and skipped",
          file=sys.stderr)
    said = f"The last run into this folder, {dead.run_id}, {how}"
    skipped = "The images it finished were skipped here"
    if not (dead.rows and (dead.ledger or dead.report)):
        return f"{said}, and wrote no report. {skipped}."
    print(f"{dead.run_id}: the {len(dead.rows)} image(s) it finished, judged as it would have judged them:",
          file=sys.stderr)
    log = _RunLog(dead.run_id, dead.logical_date, True, None)
    log.rows = dead.rows
    log.targets = [Path(row["output_key"]) if row["output_key"] else None for row in dead.rows]
    outcome = log.judge(dead.gate, dead.ledger, Path(output))
    rows = f"{len(dead.rows)} {'row' if len(dead.rows) == 1 else 'rows'}"
    written = _dead_run_report(log, outcome, dead, how, (run_id, report_at), Path(output))
    where = [f"the ledger holds them under run={dead.run_id} ({rows})"] if dead.ledger else []
    where += [f"its report, written by this run, is {written}"] if written else []
    return f"{said}{'' if written else ', and wrote no report'}. {skipped}{'; ' * bool(where)}{' and '.join(where)}."


def _dead_run_report(log: _RunLog, outcome: GateReport, dead: DeadRun, how: str, this_run: tuple[str, str | None],
                     output: Path) -> str | None:
    """Where the dead run's report was written, if it asked for one: beside its own path,
    named for it, when this run's report (``this_run``: its id and report file) goes to the
    same file, lest this run's replace it."""
    from .quality import report

    if dead.report is None:
        return None
    run_id, report_at = this_run
    path = Path(dead.report)
    if report_at and Path(report_at).resolve() == path.resolve():
        path = path.with_name(f"{path.stem}.{clean_run_id(dead.run_id)}{path.suffix}")
    log.previews = {i: p for i in report.featured(log.rows) if (p := _preview_again(log.rows[i])) is not None}
    log.remarks.append(f"This run {how}. Its rows were kept as it went; the next run into the folder, {run_id}, "
                       f"judged them and wrote this report. The images this run did not reach are in that run's "
                       f"report.")
    try:
        log.report(outcome, str(path), output)
    except OSError as exc:
        print(f"{dead.run_id}: its report cannot be written to {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return str(path)


def _preview_again(row: dict[str, Any]) -> Preview | None:
    """A dead run's before/after crop, from its master (if unchanged since) and its derivative
    on disk; none where either is gone or changed."""
    from .quality import report

    try:
        data = Path(row["source_key"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != row["source_sha256"]:
            return None
        after = codecs.decode(Path(row["output_key"]).read_bytes())
        return report.make_preview(codecs.decode(data).pixels, after.pixels)
    except (OSError, EnhanceError):
        return None


def _stalled(idle_s: float) -> None:
    """What the run's watchdog does when nothing has moved for too long: the journal holds the
    image in hand, which the next run into the folder tries once more, then leaves out."""
    print(f"error: no progress for {idle_s:.0f} s (--stall-s): a decoder or the chain is stuck; the run kills itself, "
          f"and the next run into the folder tries the image it held once more, then leaves it out",
          file=sys.stderr, flush=True)
    kill_this_process()


@contextlib.contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM (a scheduler's timeout, ``kill``) stops a local run as Ctrl-C does: the images
    done so far still get their ledger and report. Either had ended it without them."""
    before = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _read(path: Path) -> bytes:
    """A master's bytes. A file gone since the run began, a link to nothing or a read error
    fails that image alone: it had ended the run with a traceback, or been passed over."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            raise SourceMissingError(f"{path} is a link to {os.readlink(path)}, which does not exist") from None
        raise SourceMissingError(f"{path} is gone since the run began") from None
    except OSError as exc:
        raise SourceUnreadableError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _check_run_files(args: argparse.Namespace) -> None:
    """What the run writes at its end, checked before its first image: a wrong ledger folder,
    report file or gate setting was found only once every image had been enhanced, and left
    the run without its ledger (a gate setting was passed over without a word when neither
    was asked for)."""
    from .quality.gate import Thresholds

    Thresholds.with_overrides(args.gate)
    if args.ledger and Path(args.ledger).exists() and not Path(args.ledger).is_dir():
        raise PlanError(f"--ledger {args.ledger} is a file: it names the folder the ledger is kept in")
    if args.report and Path(args.report).is_dir():
        raise PlanError(f"--report {args.report} is a folder: it names the report's file, e.g. "
                        f"{Path(args.report) / 'report.html'}")


def _run_job(enhancer: Enhancer, job: Job, data: bytes, quiet: bool, beat: Callable[[], None]) -> EnhanceResult:
    from tqdm import tqdm

    from .chain.pipeline import TileProgress

    with tqdm(total=0, desc=job.source.name, unit="tile", leave=False, disable=quiet) as bar:
        def planned(tiles: int) -> None:  # each page's tiles, once the chain knows its models and size
            bar.total += tiles
            bar.refresh()
            beat()

        def tile_done() -> None:
            bar.update()
            beat()

        result = enhancer.enhance(data, TileProgress(planned, tile_done, lambda _stage: beat()))
    if job.note:
        result.record["notes"].append(job.note)
        tqdm.write(f"{job.source}: {job.note}")
    _write(job, result)
    return result


def _write(job: Job, result: EnhanceResult) -> None:
    """The derivative and its sidecar, each whole or not at all. A write error (a file size
    limit; a full disk, where the next, smaller image may still fit) fails this image alone,
    naming it, and leaves no part file: it had stopped the run ("error: [Errno 27] File too
    large") with a ``.part`` file left beside the outputs."""
    sidecar = json.dumps({"source": str(job.source), **result.record}, indent=2) + "\n"
    parts: list[tuple[Path, Path]] = []
    try:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        for path, content in ((job.target, result.data), (sidecar_of(job.target), sidecar.encode())):
            part = path.with_name(f".{path.name}.part")
            parts.append((part, path))
            part.write_bytes(content)
        for part, path in parts:
            os.replace(part, path)
    except BaseException as exc:  # an interrupt too: no part file is left behind
        for part, _ in parts:
            part.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputUnwritableError(f"{job.target} cannot be written: {exc.strerror or exc}") from None
        raise


class _RunLog:
    """Ledger rows (and report previews) for a local run, judged by the gate at the end; each
    row kept in the journal too when the run has a ledger, lest the process die before then."""

    def __init__(self, run_id: str, logical_date: dt.date, keep: bool, journal: Journal | None) -> None:
        self.run_id, self.logical_date, self.keep, self.journal = run_id, logical_date, keep, journal
        self.rows: list[dict[str, Any]] = []
        self.targets: list[Path | None] = []  # each row's derivative, whose sidecar learns the verdict
        self.previews: dict[int, Preview] = {}
        self.remarks: list[str] = []  # sentences of the report on the run as a whole
        self.ledger_part: Path | None = None  # where ``judge`` wrote the rows, which the report names

    def _add(self, row: dict[str, Any], target: Path | None) -> None:
        self.rows.append(row)
        self.targets.append(target)
        if self.journal is not None:
            self.journal.keep(row)

    def enhanced(self, job: Job, data: bytes, result: EnhanceResult, seconds: float) -> None:
        if not self.keep:
            return
        from .quality import ledger, report

        before, after = codecs.decode(data), codecs.decode(result.data)
        self.previews[len(self.rows)] = report.make_preview(before.pixels, after.pixels)
        self._add(ledger.row_from_record(
            result.record, run_id=self.run_id, logical_date=self.logical_date, shard=0,
            source_key=str(job.source), output_key=str(job.target), total_s=seconds,
        ), job.target)

    def failed(self, job: Job, data: bytes | None, error: EnhanceError, seconds: float) -> None:
        if not self.keep:
            return
        from .quality import ledger

        self._add(ledger.failed_row(
            error, run_id=self.run_id, logical_date=self.logical_date, shard=0, source_key=str(job.source),
            source_sha256=None if data is None else hashlib.sha256(data).hexdigest(), total_s=seconds,
        ), None)

    def judge(self, thresholds: list[str], ledger_at: str | None, output: Path) -> GateReport:
        """The gate's verdicts, in the rows, their sidecars and the ledger; the gate's report returned."""
        from .quality import gate, ledger

        outcome = gate.evaluate(self.rows, gate.Thresholds.with_overrides(thresholds))
        for row, target in zip(self.rows, self.targets):
            if target is not None and sidecar_of(target).exists():  # a dead run's derivative may since be gone
                record = json.loads(sidecar_of(target).read_text())
                record.update(verdict=row["verdict"], failed_expectations=row["failed_expectations"])
                sidecar_of(target).write_text(json.dumps(record, indent=2) + "\n")
        counts = {v: sum(r["verdict"] == v for r in self.rows) for v in ledger.VERDICTS}
        print("gate: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
        if ledger_at:
            self.ledger_part = ledger.add_part(self.rows, Path(ledger_at), self.logical_date, self.run_id)
            print(f"ledger: {self.ledger_part}")
        return outcome

    def report(self, outcome: GateReport, report_at: str, output: Path) -> None:
        from .quality import report

        page = report.render_report(self.rows, outcome, self.previews,
                                    title=f"Enhancement run {self.run_id} ({self.logical_date})",
                                    outputs_at=str(output.resolve()), remarks=self.remarks,
                                    ledger_at=None if self.ledger_part is None else f"the ledger ({self.ledger_part})")
        path = report.write_report(Path(report_at), page)
        print(f"report: {path}")


def _fetch(args: argparse.Namespace) -> int:
    from .models.fetch import fetch_models

    fetch_models(args.names or None)
    return 0


def _models(_: argparse.Namespace) -> int:
    from .models.manifest import load_manifest
    from .models.weights import sha256_file

    for entry in load_manifest().values():
        state = "ok" if entry.path.is_file() and sha256_file(entry.path) == entry.sha256 else "missing"
        print(f"{entry.name:26} {entry.task:17} x{entry.scale}  {state:8} {entry.description}")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from .models.onnx_export import OPSET, export

    path = Path(args.output)
    if path.exists() and not args.overwrite:
        print(f"error: {path} exists; --overwrite replaces it", file=sys.stderr)
        return 2
    try:
        done = export(args.model, path)
    except (KeyError, ValueError, RuntimeError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    print(f"{path}: {args.model}, fp32, ONNX opset {OPSET}, height and width free; onnxruntime agrees with torch "
          f"to {done.agreement_db:.1f} dB ({done.seconds:.1f} s)")
    return 0


def _presets(_: argparse.Namespace) -> int:
    print(json.dumps(PRESETS, indent=2))
    return 0


def _samples(args: argparse.Namespace) -> int:
    from .samples import write_samples

    for path in write_samples(Path(args.folder), args.long_side):
        print(path)
    return 0


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def _nightly_demo(args: argparse.Namespace) -> int:
    from .infra.nightly_demo import run_nightly

    return run_nightly(Path(args.out), args.date, preset=args.preset, scale=args.scale,
                       scans=Path(args.scans) if args.scans else None, long_side=args.long_side)


def _standalone(args: argparse.Namespace) -> int:
    from .infra.standalone import run_standalone

    return run_standalone(Path(args.out), args.date, port=args.port)


def _catalog_rebuild(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from .catalog import Catalog, default_url, rebuild
    from .quality import ledger

    if args.ledger_dir:
        rows = ledger.read_ledger(Path(args.ledger_dir)).to_pylist()
    else:
        bucket = _bucket(args.bucket)
        rows = [r for o in bucket.list(args.prefix) if o.key.endswith(".parquet")
                for r in ledger.from_parquet(bucket.get(o.key))]
    url = args.catalog or default_url()
    count = rebuild(Catalog(url), rows)
    print(f"catalog {make_url(url).render_as_string(hide_password=True)}: {count} entries from {len(rows)} ledger rows")
    return 0


def _decide(args: argparse.Namespace) -> int:
    from .catalog import Catalog, default_url
    from .review import DECISIONS, KEPT_BY_HAND

    decide = DECISIONS[args.command]
    bucket = _bucket(args.bucket)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines: stdout is the command's answer
            rows = decide(bucket, Catalog(args.catalog or default_url()), args.keys, by=args.by, reason=args.reason)
    except ValueError as exc:  # a ReviewError, or a key that is no safe object key
        print(f"nothing changed: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        if row["output_key"] is None:
            kept = any(KEPT_BY_HAND in note for note in row["notes"])
            print(f"rejected {row['source_key']} → {'kept, as it was changed by hand' if kept else 'deleted'}")
        elif args.command == "release":
            print(f"released {row['source_key']} → s3://{args.bucket}/{row['output_key']}")
        else:  # review._reinstated
            print(f"kept {row['source_key']} → s3://{args.bucket}/{row['output_key']}, its derivative again")
    return 0


def _review_queue(args: argparse.Namespace) -> int:
    from .catalog import Catalog, default_url
    from .review import awaiting, queue_size

    queue = awaiting(Catalog(args.catalog or default_url()))
    for row in queue:
        print(f"{row['output_key']}\t{row['source_key']}\trun {row['run_id']}")
    hint = " (decide with: python -m enhance_ops release|reject --bucket … --by … --reason … KEY)" if queue else ""
    print(queue_size(queue) + hint, file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .catalog import Catalog, default_url
    from .fixity import Tally, check

    bucket = _bucket(args.bucket)
    tally = Tally()
    for checked in check(bucket, Catalog(args.catalog or default_url()), args.prefix):
        if tally.add(checked):
            print(f"{checked.state}\t{checked.key}\t{checked.detail}", flush=True)
    print(tally.summary(args.prefix), file=sys.stderr)
    return 1 if tally.failing else 0


def _adopt(args: argparse.Namespace) -> int:
    from .catalog import Catalog, default_url
    from .fixity import ADOPTED, adopt

    bucket = _bucket(args.bucket)
    counts: dict[str, int] = {}
    for found in adopt(bucket, Catalog(args.catalog or default_url()), args.prefix):
        counts[found.state] = counts.get(found.state, 0) + 1
        print(f"{found.state}\t{found.key}\t{found.detail}", flush=True)
    others = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if state != ADOPTED)
    print(f"adopted {counts.get(ADOPTED, 0)} of {sum(counts.values())} derivatives written before checksums were "
          f"recorded{f' under {args.prefix}' if args.prefix else ''}{f'; {others}' if others else ''}", file=sys.stderr)
    return 1 if others else 0


def _bucket(name: str) -> S3Store:
    """The bucket a command works on, its name and keys tried first."""
    from .airflow.wiring import store

    with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines: stdout is the command's answer
        return store(name, checked=True)


CATALOG_HELP = "SQLAlchemy URL (default: $ENHANCE_CATALOG_URL or SQLite in $AIRFLOW_HOME)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m enhance_ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    enh = sub.add_parser("enhance", help="enhance an image file or a folder of images")
    enh.add_argument("input", help="an image file or a folder (searched recursively)")
    enh.add_argument("output", help="output folder (or file name for a single input)")
    enh.add_argument("--preset", default="archive-photo", choices=sorted(PRESETS), help="the chain to run")
    enh.add_argument(
        "--set", action="append", default=[], metavar="STAGE.SETTING=VALUE",
        help="override one preset setting, e.g. denoise.strength=strong (repeatable)",
    )
    enh.add_argument("--scale", type=int, choices=SCALES, help="enlargement (default: the preset's, 4)")
    enh.add_argument("--model", help="comma-separated SR models applied in order (default: the preset's where "
                     "they make the scale, else the scale's default)")
    enh.add_argument("--tile", type=int, default=Tiling.tile,
                     help="the longest tile side in input pixels (default: the device's, 256 on CPU and 1024 on "
                          "CUDA, stretched by up to an eighth where that saves a tile)")
    enh.add_argument("--pad", type=int, default=Tiling.pad,
                     help="context margin around each tile (default: each model's own, from the manifest)")
    enh.add_argument("--overlap", type=int, default=Tiling.overlap,
                     help="cross-faded overlap between tiles (default: each model's own, from the manifest)")
    enh.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    enh.add_argument(
        "--precision", choices=PRECISIONS,
        help="default: the preset's (auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32)",
    )
    enh.add_argument("--format", choices=sorted(WRITE_FORMATS), help="output format (default: as input)")
    enh.add_argument("--max-pixels", type=_whole(1), default=DEFAULT_MAX_PIXELS, help="refuse larger inputs")
    enh.add_argument("--overwrite", action="store_true", help="replace existing outputs (inputs never are)")
    enh.add_argument("--quiet", action="store_true", help="no progress bars")
    enh.add_argument("--ledger", help="write this run's rows to the Parquet ledger under this folder")
    enh.add_argument("--report", help="write the HTML report for archivists to this file")
    enh.add_argument("--gate", action="append", default=[], metavar="NAME=VALUE",
                     help="quality-gate threshold, e.g. min_consistency_psnr_db=28 (repeatable)")
    enh.add_argument("--stall-s", metavar="SECONDS",
                     help="end the run when nothing moves for this long (a decoder stuck on a file): the next run "
                          "into the folder tries that image once more, then leaves it out (default: $ENHANCE_STALL_S "
                          "or 1800; 0: never)")
    enh.add_argument("--run-id", type=_run_id, help="run identifier in the ledger (default: local-<UTC time>)")
    enh.add_argument("--date", type=_day, help="logical date YYYY-MM-DD for the ledger partition (default: today)")
    enh.set_defaults(func=_enhance)

    fetch = sub.add_parser("fetch-models", help="download and convert the model weights")
    fetch.add_argument("names", nargs="*", help="models to fetch (default: all)")
    fetch.set_defaults(func=_fetch)

    sub.add_parser("models", help="list the models and whether their weights are ready").set_defaults(func=_models)
    onnx = sub.add_parser("export-onnx", help="write a super-resolution network as an ONNX file (for TensorRT and "
                                              "other runtimes), kept only where onnxruntime agrees with torch")
    onnx.add_argument("model", help="a super-resolution model of the manifest (see `models`)")
    onnx.add_argument("output", help="the .onnx file to write")
    onnx.add_argument("--overwrite", action="store_true", help="replace an existing file")
    onnx.set_defaults(func=_export_onnx)
    sub.add_parser("presets", help="print every preset's settings").set_defaults(func=_presets)

    demo = sub.add_parser("nightly-demo", help="one real night: local S3 server, the nightly DAG, results in OUT")
    demo.add_argument("--out", default="out", help="folder for the results and the run's state (default: out)")
    demo.add_argument("--date", type=_day, default=_yesterday(),
                      help="the night's logical date (default: yesterday, UTC)")
    demo.add_argument("--preset", default="archive-photo", choices=sorted(PRESETS))
    demo.add_argument("--scale", type=int, default=4, choices=SCALES)
    demo.add_argument("--scans", help="a folder of scans to upload instead of the sample batch")
    demo.add_argument("--long-side", type=_whole(16), default=128, help="size of the generated samples")
    demo.set_defaults(func=_nightly_demo)

    ui = sub.add_parser("standalone", help="Airflow UI (airflow standalone) over the DAG and a local S3 server")
    ui.add_argument("--out", default="out", help="state is kept in OUT/standalone")
    ui.add_argument("--date", type=_day, default=_yesterday(),
                    help="the day whose incoming/ prefix gets the sample batch")
    ui.add_argument("--port", type=_whole(1, 65535), default=8080)
    ui.set_defaults(func=_standalone)

    cat = sub.add_parser("catalog-rebuild", help="rebuild the catalog of processed images from the Parquet ledger")
    source = cat.add_mutually_exclusive_group(required=True)
    source.add_argument("--ledger-dir", help="a local ledger folder (date=…/run=…/part-….parquet)")
    source.add_argument("--bucket", help="read s3://BUCKET/PREFIX through the Airflow connection $ENHANCE_S3_CONN_ID")
    cat.add_argument("--prefix", default=LEDGER, help=f"the ledger's prefix in the bucket (default: {LEDGER})")
    cat.add_argument("--catalog", help=CATALOG_HELP)
    cat.set_defaults(func=_catalog_rebuild)

    for decision, does in (("release", "move quarantined derivatives to enhanced/"),
                           ("reject", "delete quarantined derivatives, not to be made again with the same settings")):
        decide = sub.add_parser(decision, help=f"after review: {does}, recorded in the ledger and the catalog")
        decide.add_argument("keys", nargs="+", help="quarantine/<day>/… keys, as the report and review-queue list them")
        decide.add_argument("--bucket", required=True, help="the bucket, through the Airflow connection $ENHANCE_S3_CONN_ID")
        decide.add_argument("--by", required=True, help="who decided (kept in the ledger)")
        decide.add_argument("--reason", required=True, help="why (kept in the ledger)")
        decide.add_argument("--catalog", help=CATALOG_HELP)
        decide.set_defaults(func=_decide)

    queue = sub.add_parser("review-queue", help="list the quarantined derivatives that await review, from the catalog")
    queue.add_argument("--catalog", help=CATALOG_HELP)
    queue.set_defaults(func=_review_queue)

    verify = sub.add_parser("verify", help="fixity: read back every derivative and check it against the sha256 "
                                           "recorded when it was written (exit status 1 if any changed or is missing)")
    verify.add_argument("--bucket", required=True, help="the bucket, through the Airflow connection $ENHANCE_S3_CONN_ID")
    verify.add_argument("--prefix", default="", help="only derivatives under this prefix, e.g. enhanced/2026-11-30/")
    verify.add_argument("--catalog", help=CATALOG_HELP)
    verify.set_defaults(func=_verify)

    adopt = sub.add_parser("adopt-checksums", help="fixity: give each derivative written before checksums were "
                                                   "recorded the sha256 of what the bucket holds now, where it still "
                                                   "carries the pipeline's mark (exit status 1 if any could not be)")
    adopt.add_argument("--bucket", required=True, help="the bucket, through the Airflow connection $ENHANCE_S3_CONN_ID")
    adopt.add_argument("--prefix", default="", help="only derivatives under this prefix")
    adopt.add_argument("--catalog", help=CATALOG_HELP)
    adopt.set_defaults(func=_adopt)

    samples = sub.add_parser("samples", help="write the sample batch of archive-like scans")
    samples.add_argument("folder")
    samples.add_argument("--long-side", type=_whole(16), default=128)
    samples.set_defaults(func=_samples)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func in (_nightly_demo, _standalone):  # they start servers: SIGTERM must stop them too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from botocore.exceptions import BotoCoreError, ClientError
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        return int(args.func(args))
    except (OSError, OperationalError, ArgumentError, BucketError) as exc:  # a path, a disk, a database or a
        print(f"error: {_said(exc)}", file=sys.stderr)  # bucket the command was pointed at: the operator's
        return 2  # to put right, not a traceback
    except (ClientError, BotoCoreError) as exc:  # the bucket, there when the command began, failing it later
        print(f"error: S3: {_said(exc)}", file=sys.stderr)
        return 2


def _said(exc: BaseException) -> str:
    """An error's first line, with its kind where the message alone would not tell it
    ("FileNotFoundError: /ledgers", not "/ledgers")."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return first if getattr(exc, "strerror", None) or isinstance(exc, BucketError) else f"{type(exc).__name__}: {first}"
