"""Decoding image files as image viewers do, and reading their size from the header alone.

OpenCV decodes first (fast, and the reference every loader in det agrees with). What it refuses but a
viewer shows is read the way a viewer reads it, never by rewriting the user's file:

- a file cut short (a JPEG without its end-of-image marker, a PNG without its ``IEND`` chunk; common in
  photos collected from the web): a JPEG is decoded again with the end marker appended, which gives
  exactly the pixels ``cv2.imread`` gives on the file (OpenCV's file reader inserts that marker itself;
  its in-memory decoder does not); anything else, or a JPEG that still fails, goes to Pillow with
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` set for that one call. Rows past the cut come out as the decoder
  fills them (grey or black), as in a viewer; :attr:`Decoded.truncated` says so.
- any other format OpenCV cannot decode goes to Pillow as it is.

A file that neither reads (empty, random bytes, a broken header) is None with the reason.

``decode(data, reduce=r)`` asks OpenCV for the image at 1/2, 1/4 or 1/8 of its size (rounded up): for a
JPEG that is libjpeg's scaling inside the inverse DCT, 4-8x faster than decoding a phone photo in full
and then resizing it; other formats are decoded and then scaled by OpenCV. The Pillow paths ignore it.
"""
import contextlib
import io
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# OpenCV's flag for "any bit depth, any channel count, EXIF orientation applied". IMREAD_UNCHANGED would
# keep 16 bits and alpha too, but it also skips the EXIF rotation, so a phone photo stored sideways with
# an orientation tag would come out rotated against its annotations (which are made on the upright view).
IMREAD_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
# The bits OpenCV's IMREAD_REDUCED_* flags add for decoding at 1/2, 1/4 and 1/8 of the size.
REDUCE_FLAGS = {1: 0, 2: 16, 4: 32, 8: 64}

_EXIF_ORIENTATION = 0x0112  # the EXIF tag; values 5-8 store the picture turned by 90 degrees
_JPEG_START, _JPEG_END = b'\xff\xd8', b'\xff\xd9'
_PNG_START = b'\x89PNG\r\n\x1a\n'
# First bytes of the formats whose reasons name them (Pillow names the others it knows).
_SIGNATURES = ((_JPEG_START, 'JPEG'), (_PNG_START, 'PNG'), (b'GIF8', 'GIF'), (b'BM', 'BMP'),
               (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'))


@dataclass
class Decoded:
    """What :func:`decode` made of a file's bytes.

    ``img``: ``[H, W, 3]`` uint8 BGR, upright (EXIF orientation applied), or None when undecodable;
    ``truncated``: the file was cut short and was read as a viewer reads it; ``reason``: why ``img``
    is None ('' otherwise).
    """
    img: Optional[np.ndarray]
    truncated: bool = False
    reason: str = ''


def to_bgr_uint8(img: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded image -> ``[H, W, 3]`` uint8 BGR.

    Grayscale is replicated to three channels, an alpha channel is dropped, 16-bit values are mapped
    ``0..65535 -> 0..255`` (divided by 257 and rounded, so both ends map exactly).
    """
    if img.dtype == np.uint16:
        img = np.round(img / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise TypeError(f'unsupported image dtype {img.dtype}')
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def format_name(data: np.ndarray) -> str:
    """'JPEG', 'PNG', ... from the file's first bytes, or '' for a signature not listed here."""
    head = data[:8].tobytes()
    return next((name for start, name in _SIGNATURES if head.startswith(start)), '')


def looks_cut_short(data: np.ndarray) -> bool:
    """Whether a JPEG or PNG lacks the end marker its format puts last (other formats: False).

    A JPEG with bytes after its end marker (some cameras append data) is reported too; decoding tells
    the two apart."""
    name = format_name(data)
    if name == 'JPEG':
        return data[-2:].tobytes() != _JPEG_END
    if name == 'PNG':
        return data[-8:-4].tobytes() != b'IEND'
    return False


@contextlib.contextmanager
def _pillow_accepts_truncation():
    """Let Pillow load truncated files inside the block only (the flag is module-wide in Pillow)."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def _pillow_to_bgr(img: Image.Image) -> np.ndarray:
    """A loaded Pillow image -> ``[H, W, 3]`` uint8 BGR, upright, converted as :func:`to_bgr_uint8`."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith('I;16'):
        return to_bgr_uint8(np.asarray(img).astype(np.uint16))
    if img.mode != 'L':
        img = img.convert('RGB')
    array = np.asarray(img)
    return to_bgr_uint8(array if array.ndim == 2 else np.ascontiguousarray(array[:, :, ::-1]))


def _decode_with_pillow(data: np.ndarray, truncated: bool) -> Decoded:
    tolerance = _pillow_accepts_truncation() if truncated else contextlib.nullcontext()
    try:
        with tolerance, Image.open(io.BytesIO(data.tobytes())) as img:
            img.load()
            return Decoded(_pillow_to_bgr(img), truncated=truncated)
    except Exception as error:  # noqa: BLE001  Pillow raises OSError, ValueError, EOFError, struct.error...
        return Decoded(None, reason=_failure_reason(data, truncated, error))


def _failure_reason(data: np.ndarray, truncated: bool, error: Exception) -> str:
    name = format_name(data)
    unidentified = isinstance(error, UnidentifiedImageError)  # its message holds only a stream's address
    if unidentified and not name:
        first = data[:8].tobytes().hex(' ')
        return f'not an image format OpenCV or Pillow knows; first bytes {first}'
    if truncated:
        return f'{name} file cut short after {data.size} bytes; no pixels could be read'
    return f'broken {name or "image"} ' + ('header' if unidentified else f'data ({error})')


def decode(data: np.ndarray, reduce: int = 1) -> Decoded:
    """Decode encoded image bytes (uint8 ``[N]``) as described in the module docstring, at 1/``reduce``
    of the size (1, 2, 4 or 8) where OpenCV decodes it."""
    if data.size == 0:
        return Decoded(None, reason='empty file')
    flags = IMREAD_FLAGS | REDUCE_FLAGS[reduce]
    img = cv2.imdecode(data, flags)
    if img is not None:
        return Decoded(to_bgr_uint8(img))
    truncated = looks_cut_short(data)
    if truncated and format_name(data) == 'JPEG':
        img = cv2.imdecode(np.concatenate([data, np.frombuffer(_JPEG_END, np.uint8)]), flags)
        if img is not None:
            return Decoded(to_bgr_uint8(img), truncated=True)
    return _decode_with_pillow(data, truncated)


def header_size(data: np.ndarray):
    """``(height, width)`` of the upright image (as :func:`decode` returns it: width and height swap
    for an EXIF orientation that turns it by 90 degrees) from the file's header alone, or None when
    Pillow cannot parse the header. About 40x faster than decoding a 640x480 JPEG.

    Pillow gives a TIFF's size already turned. A PNG's orientation is read only when its ``eXIf`` chunk
    precedes the pixel data (Pillow would decode the image to find a later one)."""
    try:
        with Image.open(io.BytesIO(data.tobytes())) as img:
            width, height = img.size
            if img.format != 'TIFF' and (img.format != 'PNG' or 'exif' in img.info):
                if img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                    width, height = height, width
    except Exception:  # noqa: BLE001  any parse failure of a malformed header means "decode to know"
        return None
    return height, width
