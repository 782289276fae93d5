"""The HTML report archivists read after a run: one self-contained file (images embedded).

It answers, in this order: how many images passed, were quarantined or failed; why each
quarantined or failed image was held back; what the enhancement looks like (before/after
crops with a slider, for a sample of passed images and for every held-back one); how the
metrics are distributed against the gate's thresholds; and where every output lives.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .. import codecs
from ..chain import findings
from ..chain.presets import BITONAL_DEFAULTS, resolve_models
from .gate import GateReport
from .measures import MIN_SCAN_SIDE

CROP = 256  # side of the before/after crop, in output pixels
SEARCH_PIXELS = 4_000_000  # pixels looked at to place the crop
SAMPLE_PASSED = 6
MAX_HELD_VIEWERS = 60  # more held-back images are listed in the tables, without crops
MAX_LISTED = 1000  # rows per table: a backfill of 100 000 images stays a page a browser opens; the ledger has all
PLOTTED = [
    ("consistency_psnr_db", "min_consistency_psnr_db"),
    ("consistency_ssim", "min_consistency_ssim"),
    ("consistency_lpips", "max_consistency_lpips"),
    ("artefact_score", "max_artefact_score"),
    ("composite_score", None),
]


@dataclass
class Preview:
    """Before (input enlarged, nearest neighbour, so its pixels show) and after, same region."""

    before: np.ndarray
    after: np.ndarray


def shown_page(row: dict[str, Any]) -> int:
    """The page a multi-page master's before/after shows: its weakest (the lowest composite
    score), the one a reviewer has to see; 1 for an image of one page."""
    if (row.get("pages") or 1) == 1 or not (pages := _pages(row)):
        return 1
    return min(pages, key=lambda p: _finite(p["metrics"].get("composite_score"), math.inf))["page"]


def _pages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A multi-page master's pages, each as the chain left it (``pages_json``); none for one page."""
    return json.loads(row["pages_json"]) if row.get("pages_json") else []


def _finite(value: Any, otherwise: float) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else otherwise


def make_preview(source: np.ndarray, output: np.ndarray) -> Preview:
    """Crop of the output where it has most detail, and the matching input region enlarged.

    Detail is looked for on every k-th pixel of a large output (at most ``SEARCH_PIXELS``),
    so a 160-Mpx derivative costs no full-size planes to place its crop. Either image may be
    float in [0, 1] or integer samples (``codecs.decode(samples=True)``); the crops are float.
    """
    h, w = output.shape[:2]
    side = min(CROP, h, w)
    step = max(1, int(np.ceil(np.sqrt(h * w / SEARCH_PIXELS))))
    sample = output[::step, ::step]
    grey = sample.mean(axis=2) if sample.ndim == 3 else sample
    energy = np.abs(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F))
    reach = max(1, side // step)
    window = cv2.boxFilter(energy, -1, (reach, reach), normalize=True, borderType=cv2.BORDER_CONSTANT)
    cy, cx = (int(v) * step for v in np.unravel_index(int(np.argmax(window)), window.shape))
    y0, x0 = min(max(0, cy - side // 2), h - side), min(max(0, cx - side // 2), w - side)
    after = output[y0 : y0 + side, x0 : x0 + side]
    rows = np.arange(y0, y0 + side) * source.shape[0] // h  # nearest neighbour, for the crop only
    cols = np.arange(x0, x0 + side) * source.shape[1] // w
    before = source[rows][:, cols].reshape(side, side, -1)
    return Preview(*(codecs.to_unit(p) if np.issubdtype(p.dtype, np.integer) else p for p in (before, after)))


def _held(rows: Sequence[dict[str, Any]]) -> list[int]:
    return [i for i, r in enumerate(rows) if r["verdict"] in ("quarantined", "failed", "rejected")]


def _sample_passed(rows: Sequence[dict[str, Any]], kinds: dict[int, list[str]]) -> list[int]:
    """Passed images to show, those whose colours the chain restored first: the restoration
    reads a faded print's original colours into it, which a curator wants to see."""
    passed = [i for i, r in enumerate(rows) if r["verdict"] == "passed" and r.get("status") == "ok"]
    return sorted(passed, key=lambda i: findings.FADED not in kinds[i])[:SAMPLE_PASSED]


def _kinds(rows: Sequence[dict[str, Any]]) -> dict[int, list[str]]:
    """What the chain read each enhanced row's scan as (``chain/findings.py``), in the order
    it says them, by row index: each row's stages parsed once for the whole report."""
    return {i: _read_as(r) for i, r in enumerate(rows) if r.get("status") == "ok"}


def _read_as(row: dict[str, Any]) -> list[str]:
    """A multi-page master's findings are every page's, once each; its ``stages_json`` holds
    the first page's alone (so do rows written before pages said theirs)."""
    pages = _pages(row)
    if pages and all("read_as" in page for page in pages):
        return list(dict.fromkeys(kind for page in pages for kind in page["read_as"]))
    return [f.kind for f in findings.findings(json.loads(row["stages_json"]))] if row.get("stages_json") else []


def featured(rows: Sequence[dict[str, Any]]) -> list[int]:
    """Rows whose before/after crops the report shows: so a caller makes previews for these only."""
    return [i for i in _held(rows)[:MAX_HELD_VIEWERS] + _sample_passed(rows, _kinds(rows))
            if rows[i].get("status") == "ok"]


def _data_uri(image: np.ndarray | bytes, fmt: str = "JPEG") -> str:
    if isinstance(image, bytes):
        payload, mime = image, "image/png"
    else:
        pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
        pixels = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt, quality=90)
        payload, mime = buf.getvalue(), f"image/{fmt.lower()}"
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def _plot(rows: Sequence[dict[str, Any]], report: GateReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(3.2 * len(PLOTTED), 2.6), dpi=100)
    thresholds = report.thresholds.__dict__
    for ax, (metric, limit) in zip(axes, PLOTTED):
        values = [r[metric] for r in rows if r.get(metric) is not None and math.isfinite(r[metric])]
        ax.hist(values or [0.0], bins=min(20, max(5, len(values))), color="#4a6fa5", alpha=0.85 if values else 0.0)
        if limit:
            ax.axvline(thresholds[limit], color="#c0392b", linestyle="--", label="gate")
            ax.legend(fontsize=7)
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def following_rows(rows: Sequence[dict[str, Any]]) -> set[int]:
    """Which rows are copies elsewhere pointing at a derivative the run made again in place
    (``tasks.copies_following``): masters the run did not take, filed under their own days."""
    made = {r["output_key"] for r in rows if r.get("status") == "ok"}
    return {i for i, r in enumerate(rows) if r.get("status") == "duplicate" and r["output_key"] in made}


def _why(row: dict[str, Any]) -> str:
    """Why an image is held back: the expectations it broke, its error, or (a copy of content
    processed before, which carries that verdict) the processing it follows."""
    if row.get("failed_expectations"):
        return "; ".join(_reason(row, expectation) for expectation in row["failed_expectations"])
    if row.get("status") == "duplicate":
        return f"a copy: {row['notes'][0]}" if row.get("notes") else "a copy of content processed before"
    return f"{row.get('error_type')}: {row.get('error_message')}"


_PLAINLY = {  # what a broken measure means on the picture, for a reviewer who has not read docs/quality.md
    "consistency_psnr_db": "the enlargement, shrunk back, strays from the scan: detail redrawn or invented",
    "consistency_ssim": "the enlargement, shrunk back, strays from the scan's structure: detail redrawn or invented",
    "consistency_lpips": "the enlargement looks unlike the scan enlarged plainly: texture invented or lost",
    "clipping_added": "highlights or shadows blown out by the enhancement",
}


def _reason(row: dict[str, Any], expectation: str) -> str:
    """A broken expectation with this image's own value and what it means on the picture
    ("consistency_psnr_db 27.73, needs >= 30: the enlargement, shrunk back, strays …"), so a
    reviewer sees how far off it is and what to look for without looking either up."""
    column, rule = expectation.split(" ", 1)
    if column not in row:
        return expectation  # one about several columns (output size = input size x scale)
    value = row[column]
    if isinstance(value, str):  # what was found ("master_damage: libjpeg: Corrupt JPEG data: …")
        return f"{column}: {value}"
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{column} not measured" + _too_small(row, column)
    plainly = _artefacts(row) if column == "artefact_score" else _PLAINLY.get(column)
    return f"{column} {value:.4g}, needs {rule}" + (f": {plainly}" if plainly else "")


def _too_small(row: dict[str, Any], column: str) -> str:
    """Why a consistency measure is missing, where the scan is smaller than it takes."""
    side, width, height = MIN_SCAN_SIDE.get(column), row.get("input_width"), row.get("input_height")
    if side is None or not isinstance(width, int) or not isinstance(height, int) or min(width, height) >= side:
        return ""
    return f": the scan is {width} × {height} px, and it takes {side} px a side"


def _artefacts(row: dict[str, Any]) -> str:
    """Which artefact the score is: it is the larger of the halo fraction and the seams' excess."""
    halo, seams = row.get("halo_fraction"), row.get("seam_score")
    if isinstance(halo, (int, float)) and math.isfinite(halo) and halo >= (row.get("artefact_score") or 0.0):
        return f"halos or ringing along edges ({halo:.1%} of the pixels overshoot)"
    if isinstance(seams, (int, float)) and math.isfinite(seams):
        return f"seams along the tile grid (seam score {seams:.3g})"
    return "halos or seams"


def _models_used(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Which networks enlarged how many images: a page of black and white only, or of text,
    and a printed halftone go to another one than a photograph does (``presets.BITONAL_DEFAULTS``)."""
    done = [r for r in rows if r.get("status") == "ok"]
    used = Counter(name for r in done for name in r.get("models") or ())
    if not used:
        return []
    said = ["Super-resolution: " + "; ".join(f"{name}, {n} image{'s' * (n != 1)}" for name, n in used.items()) + "."]
    images: Counter[tuple[str, str]] = Counter()
    pages_in_all: Counter[tuple[str, str]] = Counter()
    for r in done:
        if route := _page_route(r):
            images[route[:2]] += 1
            pages_in_all[route[:2]] += route[2]
    for (pages, photos), n in images.items():
        m = pages_in_all[pages, photos]
        said.append(f"Pages of text or of black and white only, and printed halftones, went to {pages} in place of "
                    f"{photos}, which would redraw their letters and dots: {n} image{'s' * (n != 1)}"
                    + (f", {m} page{'s' * (m != 1)} of them in all." if m != n else "."))
    precisions = Counter(r["lpips_precision"] for r in done if r.get("lpips_precision"))
    if len(precisions) > 1:  # workers with and without native bf16: their LPIPS differ in the fourth decimal
        said.append("LPIPS was computed in " + " and ".join(f"{p} for {n} image{'s' * (n != 1)}"
                                                             for p, n in sorted(precisions.items()))
                    + " (workers differ): those values can differ in the fourth decimal.")
    return said


def _page_route(row: dict[str, Any]) -> tuple[str, str, int] | None:
    """(page models, photo models, how many pages) where the row's image, or a page of it, went
    to the models for pages instead of its preset's (the superres decision in its stages says
    which page why)."""
    if not row.get("parameters_json"):
        return None
    sr = json.loads(row["parameters_json"])["superres"]
    try:
        photos = resolve_models(sr["scale"], sr.get("models") or ())
        pages = resolve_models(sr["scale"], sr.get("bitonal_models") or (), BITONAL_DEFAULTS)
    except ValueError:  # a row of a model since withdrawn from the manifest: nothing to say of its route
        return None
    only_pages = set(pages) - set(photos)
    if not only_pages or not only_pages <= set(row.get("models") or ()):
        return None
    each = _pages(row) or [row]
    routed = sum(only_pages <= set(page.get("models") or ()) for page in each)
    return " then ".join(pages), " then ".join(photos), routed


_FOUND = {  # a finding in words, and what the chain did for it: of one print, of several
    findings.FADED: ("faded colour print, its colours restored", "faded colour prints, their colours restored"),
    findings.MONOCHROME: ("monochrome print, its tone kept", "monochrome prints, their tone kept"),
    findings.ON_BACKGROUND: ("print on the scanner's background, judged without it",
                             "prints on the scanner's background, judged without it"),
}


def _prints_found(kinds: dict[int, list[str]]) -> list[str]:
    """How many scans the chain read as faded colour prints (an interpretation a curator may
    want to look at), monochrome prints or prints on the scanner's background: each image's
    notes say which and how. A multi-page master counts once for each kind any of its pages
    was read as."""
    counted = Counter(kind for found in kinds.values() for kind in found)
    if not counted:
        return []
    said = [f"{n} {one if n == 1 else several}" for kind, (one, several) in _FOUND.items() if (n := counted[kind])]
    return ["Read from the scans (each image's notes say more): " + "; ".join(said) + "."]


def _storage(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What the run's derivatives take, by where they went: enlarged x4, a scan takes 16 times
    its pixels, and the archive plans its storage from this."""
    sizes = {v: [r["output_bytes"] for r in rows if r.get("status") == "ok" and r.get("verdict") == v
                 and r.get("output_bytes") is not None] for v in ("passed", "quarantined")}
    if not any(sizes.values()):
        return []
    shares = [f"{len(s)} {'published' if v == 'passed' else 'held'}, {_in_bytes(sum(s))}" for v, s in sizes.items() if s]
    return [f"Derivatives written: {'; '.join(shares)}."]


def _in_bytes(count: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def _viewer(index: int, preview: Preview) -> str:
    before, after = _data_uri(preview.before), _data_uri(preview.after)
    side = preview.after.shape[1]
    return (
        f'<div class="viewer" style="width:{side}px;height:{preview.after.shape[0]}px">'
        f'<img class="after" src="{after}" alt="after">'
        f'<img class="before" id="before-{index}" src="{before}" alt="before">'
        f'<input type="range" min="0" max="100" value="50" aria-label="before/after"'
        f' oninput="document.getElementById(\'before-{index}\').style.clipPath=\'inset(0 \'+(100-this.value)+\'% 0 0)\'">'
        "</div>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1400px}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.totals span{display:inline-block;margin-right:1.5rem;font-size:1.3rem}
.passed{color:#1e7b34}.quarantined{color:#b9770e}.failed{color:#c0392b}.rejected{color:#7d3c98}
table{border-collapse:collapse;font-size:.85rem;margin:1rem 0}td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left}
th{background:#f4f4f4}.card{display:inline-block;vertical-align:top;margin:0 1rem 1.5rem 0;max-width:300px}
.viewer{position:relative;border:1px solid #999}.viewer img{position:absolute;top:0;left:0;width:100%;height:100%;image-rendering:pixelated}
.viewer img.before{clip-path:inset(0 50% 0 0)}.viewer input{position:absolute;bottom:-1.6rem;left:0;width:100%}
.card p{font-size:.8rem;margin:2rem 0 0;word-break:break-all}
"""
_LOAD_CHECK = """
window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){
if(im[i].complete&&im[i].naturalWidth>0)ok++;}document.body.setAttribute('data-images',ok+'/'+im.length);});
"""


def write_report(path: Path, page: str) -> Path:
    """Write a run's report (``render_report``) to a file, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def render_report(
    rows: Sequence[dict[str, Any]],
    gate: GateReport,
    previews: dict[int, Preview],
    *,
    title: str,
    outputs_at: str,
    remarks: Sequence[str] = (),
    ledger_at: str | None = None,
) -> str:
    """The report's HTML for one run; ``previews`` maps row index → before/after crops.

    ``remarks``: sentences about the run as a whole (files left out, images deferred).
    ``ledger_at``: where every row is, named under a table cut at ``MAX_LISTED`` rows; None
    for a run that kept no ledger.
    """
    verdicts = Counter(r["verdict"] for r in rows)
    kinds = _kinds(rows)
    held, passed = _held(rows), _sample_passed(rows, kinds)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style><script>{_LOAD_CHECK}</script></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>Outputs: {html.escape(outputs_at)}</p>",
        "<div class='totals'>",
        *(f"<span class='{v}'>{verdicts.get(v, 0)} {v}</span>" for v in ("passed", "quarantined", "failed")),
        *([f"<span class='rejected'>{verdicts['rejected']} rejected</span>"] if verdicts.get("rejected") else []),
        "</div>",
    ]
    following = following_rows(rows)
    duplicates = [r for i, r in enumerate(rows) if r.get("status") == "duplicate" and i not in following]
    if duplicates:
        parts.append(f"<p class='sub'>{len(duplicates)} of these were copies of content processed by an earlier run; "
                     "they were not enhanced again and point at the earlier derivative (see their notes).</p>")
    if following:
        are = "is a copy" if len(following) == 1 else "are copies"
        parts.append(f"<p class='sub'>{len(following)} of these {are} elsewhere of content this run made again "
                     "in place, pointing at its new derivative (see their notes).</p>")
    if not rows:
        parts.append("<p>No new images: nothing to enhance in this run.</p>")
    said = [*_models_used(rows), *_prints_found(kinds), *_storage(rows), *remarks]
    parts += [f"<p class='sub'>{html.escape(remark)}</p>" for remark in said]
    parts.append("<h2>Held back for review</h2>")
    if not held:
        parts.append("<p>None: every image passed the gate.</p>")
    else:
        parts.append("<table><tr><th>source</th><th>output</th><th>verdict</th><th>why</th></tr>")
        for i in held[:MAX_LISTED]:
            r = rows[i]
            parts.append(f"<tr><td>{_fmt(r['source_key'])}</td><td>{_fmt(r.get('output_key'))}</td>"
                         f"<td class='{r['verdict']}'>{r['verdict']}</td><td>{html.escape(_why(r))}</td></tr>")
        parts.append("</table>")
        in_the_bucket = any(str(rows[i].get("output_key") or "").startswith("quarantine/") for i in held)
        queue = "; <code>review-queue</code> lists every quarantined one" if in_the_bucket else ""
        parts += _cut(len(held), ledger_at, f"held-back images{queue}")
        if in_the_bucket:
            parts.append("<p class='sub'>After review, the DAG <code>review_quarantined</code> (decision, output "
                         "keys, your name and why) releases a quarantined image you accept to enhanced/, or deletes "
                         "one you reject, and records the decision in the ledger.</p>")
    for heading, indices in (("Before and after: held back", held[:MAX_HELD_VIEWERS]),
                             ("Before and after: a sample that passed", passed)):
        shown = [i for i in indices if i in previews]
        if heading.endswith("held back") and len(held) > MAX_HELD_VIEWERS:
            heading += f" (the first {MAX_HELD_VIEWERS} of {len(held)})"
        if not shown:
            continue
        first = (" Those whose colours were restored as a faded print's come first." if heading.endswith("passed")
                 and any(findings.FADED in kinds[i] for i in shown) else "")
        parts.append(f"<h2>{heading}</h2><p class='sub'>Drag the slider: left of it is the scan (enlarged, "
                     f"pixels shown as they are), right of it the enhanced image.{first}</p>")
        for i in shown:
            r = rows[i]
            page = f", page {shown_page(r)} of {r['pages']} (its weakest)" if (r.get("pages") or 1) > 1 else ""
            read_as = "".join(f"<br>{html.escape(_FOUND[kind][0])}" for kind in kinds.get(i, []))
            parts.append(f"<div class='card'>{_viewer(i, previews[i])}<p><b class='{r['verdict']}'>{r['verdict']}</b> "
                         f"{_fmt(r['source_key'])}{page}{read_as}</p></div>")
    parts += [
        "<h2>Metric distributions</h2>",
        f"<img src='{_data_uri(_plot(rows, gate))}' alt='metric histograms' style='max-width:100%'>",
        "<h2>Gate</h2><table><tr><th>expectation</th><th>images breaking it</th></tr>",
        *(f"<tr><td>{html.escape(label)}</td><td>{count}</td></tr>" for label, count in gate.expectations.items()),
        "</table>",
        "<h2>Every image</h2><table><tr><th>source</th><th>output</th><th>verdict</th><th>size</th>"
        "<th>PSNR (dB)</th><th>SSIM</th><th>LPIPS</th><th>artefacts</th><th>composite</th><th>seconds</th>"
        "<th>notes</th></tr>",
    ]
    for r in rows[:MAX_LISTED]:
        size = f"{r['output_width']}×{r['output_height']}" if r.get("output_width") else "–"
        if (r.get("pages") or 1) > 1:
            size += f"<br>page 1 of {r['pages']}; measures: the worst page's"
        parts.append(
            f"<tr><td>{_fmt(r['source_key'])}</td><td>{_fmt(r.get('output_key'))}</td>"
            f"<td class='{r['verdict']}'>{r['verdict']}</td><td>{size}</td>"
            f"<td>{_fmt(r.get('consistency_psnr_db'), 2)}</td><td>{_fmt(r.get('consistency_ssim'))}</td>"
            f"<td>{_fmt(r.get('consistency_lpips'))}</td><td>{_fmt(r.get('artefact_score'))}</td>"
            f"<td>{_fmt(r.get('composite_score'))}</td><td>{_fmt(r.get('total_s'), 2)}</td>"
            f"<td>{html.escape('; '.join(r.get('notes') or []))}</td></tr>"
        )
    parts.append("</table>")
    parts += _cut(len(rows), ledger_at, "images")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_fixity(found: dict[str, Any], *, title: str, listing_at: str) -> str:
    """The page archivists read after a fixity check (``fixity.record``'s findings): the
    counts, and each derivative not as it was written, with what was found."""
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(found['summary'])}</p>",
    ]
    problems = found["not_intact"]
    if not problems:
        parts.append("<p>Every derivative checked is as it was written.</p>")
    else:
        parts.append(f"<p class='{'failed' if found['failing'] else 'quarantined'}'>{len(problems)} derivatives are not as recorded when they were written "
                     "(unrecorded: written before checksums were kept, so only their presence was checked):</p>")
        parts.append("<table><tr><th>state</th><th>derivative</th><th>master</th><th>written by run</th>"
                     "<th>what was found</th></tr>")
        parts += [f"<tr><td>{_fmt(p['state'])}</td><td>{_fmt(p['key'])}</td><td>{_fmt(p['source_key'])}</td>"
                  f"<td>{_fmt(p['run_id'])}</td><td>{_fmt(p['detail'])}</td></tr>" for p in problems[:MAX_LISTED]]
        parts.append("</table>")
        parts += _cut(len(problems), listing_at, "derivatives")
    parts.append("</body></html>")
    return "\n".join(parts)


def _cut(total: int, ledger_at: str | None, what: str) -> list[str]:
    """The line under a table shortened to ``MAX_LISTED`` rows, saying where the rest are."""
    if total <= MAX_LISTED:
        return []
    rest = f"{html.escape(ledger_at)} has every row" if ledger_at else \
        "this run kept no ledger (<code>--ledger</code> keeps every row)"
    return [f"<p class='sub'>The first {MAX_LISTED} of {total} {what}; {rest}.</p>"]
