"""What the chain found a scan to be that changed what it did, in words for an archivist.

A faded colour print has its colours restored: an interpretation of the scan, which a
curator may want to look at. A monochrome print keeps its tone where the colour stages
would have taken it for a cast or for fading; a print scanned on the scanner's background
is judged and changed without it. The ledger's notes say so for each image, and the
report counts them. They are read from the stage records (as the ledger keeps them in
``stages_json``), so a row of an earlier run reads the same.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import color, toning

FADED, MONOCHROME, ON_BACKGROUND = "faded", "monochrome", "on_background"
KEPT_FROM = {  # what a monochrome print's tone was kept from, by the stage that measured it
    "exposure": "kept through exposure's stretch",
    "colour_cast": "not taken for a colour cast",
    "colour_restore": "not taken for fading",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # FADED, MONOCHROME or ON_BACKGROUND
    note: str


def findings(stages: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """``stages``: an image's stage records as dicts (``stage``, ``decision``, ``details``)."""
    by_stage = {s["stage"]: s for s in stages}
    found = []
    share = by_stage.get("dynamic_range", {}).get("details", {}).get("print_share")
    if share is not None:
        found.append(Finding(ON_BACKGROUND, f"a print scanned on the scanner's background ({1 - share:.0%} of the scan "
                                            "around it): its tone and colour were judged and changed on the print "
                                            "alone, the background left as scanned"))
    toned = [s for s in stages if "toning" in s.get("details", {})]
    if toned:
        tone = toned[0]["details"]["toning"]
        kept = [KEPT_FROM[s["stage"]] for s in toned if s["stage"] in KEPT_FROM]
        found.append(Finding(MONOCHROME, f"a monochrome print ({toning.described(tone['hue_deg'], tone['chroma'])}): "
                                         f"its tone was {_joined(kept)}"))
    restore = by_stage.get("colour_restore")
    if restore is not None and restore["decision"] == color.RESTORED:
        details = restore["details"]
        raised = f", chroma raised x{details['chroma_gain']:.2f}" if details["chroma_gain"] >= 1.005 else ""
        share = details.get("strength", 1.0)
        how_far, faint = (f" {share:.0%} of the way", ": a faint stain, which a warm, low-key photograph's own "
                          "shadows can show too") if share < 0.995 else ("", "")
        found.append(Finding(FADED, f"{_faded_by(details)}: its colours were restored{how_far} (the stain taken out, "
                                    f"each channel's contrast stretched{raised}){faint}; colour_restore.mode=off "
                                    "keeps the scan's colours"))
    return found


def _faded_by(details: Mapping[str, Any]) -> str:
    """Why the print was taken for faded, by what was measured: the stain on the master
    (``stain``) or the signs measured after denoising (``signs``)."""
    stain = details.get("stain") or details.get("signs")
    if stain and color.stain_strength(stain["black_luma"], stain["range_luma"], stain["stain_chroma"]) > 0:
        return (f"a faded colour print, its blacks lifted to luma {stain['black_luma']:.2f} and tinted "
                f"(chroma {stain['stain_chroma']:.0f})")
    signs = details.get("signs")
    if signs and color.FadingSigns(**signs).faded:
        return (f"a faded colour print, low in contrast (luma range {signs['range_luma']:.2f}) and in colour "
                f"(chroma {signs['chroma_p95']:.0f} at the 95th percentile)")
    return "colour_restore.mode=on (no sign of fading measured)"


def _joined(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
