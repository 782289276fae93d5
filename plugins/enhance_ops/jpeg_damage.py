"""Damage in a JPEG's compressed pixel data, which the decoders the codecs use pass over in silence.

libjpeg decodes on past most damage to the entropy-coded data: a changed byte desynchronises
the Huffman decoder, and every block after it comes out garbled or shifted in colour, to the
end of the image. It says so only in a warning ("Corrupt JPEG data: 114 extraneous bytes
before marker 0xd9"), which OpenCV writes to stderr and Pillow drops. After some damage it
gives up altogether, and OpenCV still returns the image, blank from there on. Fuzzing a
sound photograph one byte at a time: about a third of the changes drew a warning or an
error, all of them silent before.

libjpeg-turbo through simplejpeg, with warnings taken as errors, tells both. It decodes at an
eighth of the size: every coefficient is still read, which is where damage shows, but few
are transformed back into pixels (35 ms for a 16-Mpx photo, a fifth of a full decode).
"""
from __future__ import annotations

import simplejpeg

# libjpeg's warnings about headers, not pixel data: the image decodes whole after them. The
# first warning ends the check, so damage after one of these goes unseen.
_HARMLESS = ("unknown JFIF revision", "Unknown Adobe color transform", "Invalid SOS parameters", "bad ICC marker",
             "thumbnail image size")


def found(data: bytes) -> str | None:
    """libjpeg's words for damage it met decoding a JPEG's pixel data; None where there was none."""
    try:
        colour = simplejpeg.decode_jpeg_header(data)[2]
    except ValueError:
        return None  # a header libjpeg cannot read: the codecs' concern, which refuse it before this
    try:
        simplejpeg.decode_jpeg(data, colorspace="CMYK" if colour in ("CMYK", "YCCK") else "GRAY",
                               min_factor=8, min_width=1, min_height=1, strict=True)
    except ValueError as exc:
        message = str(exc)
        return None if any(words in message for words in _HARMLESS) else message
    return None
