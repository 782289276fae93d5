"""The derivative's XMP identity: a new instance of a new document, derived from the master.

XMP's media management gives every saved file its own ``xmpMM:InstanceID``, and a file
saved as another document its own ``xmpMM:DocumentID``, naming the file it came from in
``xmpMM:DerivedFrom``; Adobe's tools do so on every "Save As". The derivative had carried the
master's IDs as they were, so an asset system that links versions by them took the enhanced
derivative for the archival master itself. Where the master's XMP has an InstanceID, the
derivative gets new IDs and a DerivedFrom naming the master's (``OriginalDocumentID`` and the
history stay the master's). The new IDs are name-based UUIDs of the master's InstanceID and
of what the derivative is (``token``): the same master enhanced the same way gives the same
bytes, and another enhancement of it other IDs. Only the file's own properties change: a
description nested in another (an ingredient's, in ``xmpMM:Pantry``) names another file. A
packet that does not parse as XML after the change (a damaged one, or one laid out as no
writer does) keeps its IDs as they were.

EXIF's ImageUniqueID, "assigned uniquely to each image", is derived the same way
(``unique_id``), in the EXIF and where the packet states it: carried as it was, it had made
the derivative the master to a collection system that matches images by it.
"""
from __future__ import annotations

import bisect
import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, unescape

_NAMESPACE = uuid.UUID("0f6c5b8e-7d1a-5c9e-9a57-3c1e2f4b8d60")  # ours, for the name-based IDs
_MM, _REF = "http://ns.adobe.com/xap/1.0/mm/", "http://ns.adobe.com/xap/1.0/sType/ResourceRef#"
# Each pattern stops at the next "<" (which no attribute value holds) or the next tag like its
# own: a packet of many unclosed tags costs time in proportion to its size, not its square
# (20,000 unclosed DerivedFrom tags had taken 27 s).
_DESCRIPTION = re.compile(r"""<rdf:Description(?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*(/?)>""")
_CLOSING = re.compile(r"</rdf:Description\s*>")
_DERIVED_FROM = re.compile(r"<xmpMM:DerivedFrom\b[^<>]*?/>|<xmpMM:DerivedFrom\b[^<>]*>"
                           r"(?:(?!</?xmpMM:DerivedFrom\b).)*</xmpMM:DerivedFrom>", re.DOTALL)


def unique_id(master: str, token: str) -> str:
    """The derivative's ImageUniqueID (32 hex digits, EXIF's 128 bits) from the master's."""
    return uuid.uuid5(_NAMESPACE, "|".join(("ImageUniqueID", master, token))).hex.upper()


def derived(text: str, token: str) -> str:
    """``text`` (an XMP packet) with the derivative's own IDs, derived from the master's."""
    text = _with_unique_ids(text, token)
    master = {name: _value(text, f"xmpMM:{name}") for name in ("InstanceID", "DocumentID")}
    if not master["InstanceID"]:
        return text
    ids = {name: f"{prefix}:{uuid.uuid5(_NAMESPACE, '|'.join((name, master['InstanceID'] or '', token)))}"
           for name, prefix in (("InstanceID", "xmp.iid"), ("DocumentID", "xmp.did")) if master[name]}
    kept, after = [], 0
    for old in _outside_nested(_DERIVED_FROM, text):
        kept.append(text[after:old.start()])
        after = old.end()
    changed = "".join(kept) + text[after:]
    for name, value in ids.items():
        found = _property(changed, f"xmpMM:{name}")
        if found is None:  # a damaged packet whose DerivedFrom took the property in
            return text
        group = _group(found)
        changed = changed[:found.start(group)] + value + changed[found.end(group):]
    reference = "".join(f"<stRef:{field}>{escape(value)}</stRef:{field}>" for field, value in
                        (("instanceID", master["InstanceID"]), ("documentID", master["DocumentID"])) if value)
    derived_from = (f'<xmpMM:DerivedFrom rdf:parseType="Resource" xmlns:xmpMM="{_MM}" xmlns:stRef="{_REF}">'
                    f"{reference}</xmpMM:DerivedFrom>")
    at = changed.index(ids["InstanceID"])
    holders = [match for match in _outside_nested(_DESCRIPTION, changed) if match.start() < at]
    if not holders:
        return text
    holder = holders[-1]
    end = holder.end()
    if holder[1]:  # <rdf:Description .../>: it holds attributes alone
        changed = f"{changed[:end - 2]}>{derived_from}</rdf:Description>{changed[end:]}"
    else:
        changed = f"{changed[:end]}{derived_from}{changed[end:]}"
    return changed if _parses(changed) else text


def _nested(text: str) -> list[tuple[int, int]]:
    """Where the descriptions inside another lie (an ingredient's in ``xmpMM:Pantry``, say):
    their IDs and DerivedFrom are another file's, not this one's."""
    tags = sorted([*((m.start(), m.end(), "self" if m[1] else "open") for m in _DESCRIPTION.finditer(text)),
                   *((m.start(), m.end(), "close") for m in _CLOSING.finditer(text))])
    spans, depth, opened = [], 0, 0
    for start, end, kind in tags:
        if kind == "open":
            depth += 1
            opened = start if depth == 2 else opened
        elif kind == "close":
            depth -= 1
            if depth == 1:
                spans.append((opened, end))
        elif depth == 1:  # deeper ones lie within a span already
            spans.append((start, end))
    return sorted(spans)


def _outside_nested(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    nested = _nested(text)  # apart from one another, in order
    starts = [start for start, _ in nested]

    def inside(at: int) -> bool:
        index = bisect.bisect_right(starts, at) - 1
        return index >= 0 and at < nested[index][1]

    return [m for m in pattern.finditer(text) if not inside(m.start())]


_UNIQUE_IDS = ("exif:ImageUniqueID", "exifEX:ImageUniqueID")  # EXIF's, in XMP's older and CIPA's schemas


def _with_unique_ids(text: str, token: str) -> str:
    """``text`` with the file's own ImageUniqueID, where it states one (Adobe's tools copy
    the EXIF's there), derived as the EXIF's is."""
    for name in _UNIQUE_IDS:
        found = _property(text, name)
        if found is not None:
            group = _group(found)
            derivative = unique_id(unescape(found[group]).strip(), token)
            text = text[:found.start(group)] + derivative + text[found.end(group):]
    return text


def _property(text: str, name: str) -> re.Match[str] | None:
    """The file's own property ``name`` (with its prefix, ``xmpMM:InstanceID``), attribute or
    element (the group named value its value); None without one."""
    pattern = re.compile(rf"""\b{name}\s*=\s*(?:"(?P<value>[^"<]*)"|'(?P<single>[^'<]*)')"""
                         rf"|<{name}>(?P<element>[^<]*)</{name}>")
    return next(iter(_outside_nested(pattern, text)), None)


def _group(found: re.Match[str]) -> str:
    return next(name for name in ("value", "single", "element") if found[name] is not None)


def _value(text: str, name: str) -> str | None:
    found = _property(text, name)
    return None if found is None else unescape(found[_group(found)]).strip() or None


def _parses(text: str) -> bool:
    try:
        ET.fromstring(text.strip().strip("\x00"))
    except ET.ParseError:
        return False
    return True
