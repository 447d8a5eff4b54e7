"""Images a data file refers to, read once, in one place, for every loader.

What goes to a model is always a PNG, JPEG or WebP no larger than ``max_side`` on its longest
side (default 1024 px, ``MEDOPS_IMAGE_MAX_SIDE``):

* PNG, JPEG and WebP pass through byte for byte when they fit and carry no metadata; a larger one
  is resized with its aspect kept (Lanczos, EXIF orientation applied) and re-encoded in its own
  format. One that carries metadata (EXIF with its GPS position and camera, XMP, IPTC, comments,
  PNG text chunks) is re-encoded without it (a JPEG that only needs stripping keeps its own
  quantisation tables): only pixels and the ICC colour profile are stored or sent
  (docs/PRIVACY.md). The format is read from the bytes, not the file name.
* DICOM (``.dcm``, or a file with the ``DICM`` preamble) is read with pydicom and rendered to an
  8-bit greyscale (or RGB) PNG: the modality LUT (RescaleSlope / RescaleIntercept) first, then the
  file's own window (the first WindowCenter / WindowWidth, the DICOM linear function); a file
  without a window is scaled from its lowest to its highest value (min-max). MONOCHROME1 is
  inverted so that bone stays white. Only pixels leave: every DICOM tag (patient, study,
  institution) is dropped, and the PNG carries no text chunk. Multi-frame files are refused
  (there is no one picture to show).

A missing, zero-byte or unreadable image, another format, or one over ``MAX_PIXELS`` (50
megapixels: a decompression bomb is refused before its pixels are decoded) is a ``DataError``
naming the data file, the line, the field and the image, before anything is written.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from medops.content import ImagePart, data_uri, decode_data_uri
from medops.errors import DataError, UserError

DEFAULT_MAX_SIDE = 1024
THUMBNAIL_SIDE = 160  # a report's thumbnails: small enough that a page of them stays light
MAX_SIDE_ENV = "MEDOPS_IMAGE_MAX_SIDE"
MAX_PIXELS = 50_000_000
PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_AS_FORMAT = {"MPO": "JPEG"}  # a camera's JPEG with a second picture inside: Pillow names it MPO
_DICOM_SUFFIXES = (".dcm", ".dicom")
_DICOM_MEDIA = ("application/dicom",)


class ImageError(ValueError):
    """Why an image cannot be used (the caller names file, line, field and image)."""


def configured_max_side(max_side: int | None = None) -> int:
    """``max_side`` when given, else ``MEDOPS_IMAGE_MAX_SIDE``, else 1024."""
    if max_side is None:
        raw = os.environ.get(MAX_SIDE_ENV, "").strip()
        if not raw:
            return DEFAULT_MAX_SIDE
        try:
            max_side = int(raw)
        except ValueError:
            raise UserError(f"{MAX_SIDE_ENV}={raw!r}: expected a whole number of pixels") from None
    if max_side < 1:
        raise UserError(f"image longest side {max_side}: must be at least 1 pixel")
    return max_side


def prepare(data: bytes, *, name: str = "", max_side: int | None = None) -> tuple[str, bytes]:
    """(media type, bytes) of the image a model is sent; ``name`` (a file name) only helps tell
    DICOM. ImageError says why an image is refused."""
    side = configured_max_side(max_side)
    if not data:
        raise ImageError("empty file (0 bytes)")
    if _is_dicom(data, name):
        return "image/png", _render_dicom(data, side)
    return _pass_through(data, side)


def read(path: Path, *, max_side: int | None = None) -> tuple[str, bytes]:
    """``prepare`` on a file's bytes; ImageError for a missing or unreadable file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"no such file ({path})") from None
    except IsADirectoryError:
        raise ImageError(f"is a directory ({path})") from None
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return prepare(data, name=path.name, max_side=max_side)


def image_part(
    ref: str, *, data_file: str | Path, line: int | None, field: str, max_side: int | None = None
) -> ImagePart:
    """The content part for an image a data file names: ``ref`` is a path relative to the data
    file or a base64 ``data:`` URI (nothing is fetched). DataError names file, line, field, image."""
    data_file = Path(data_file)

    def refused(reason: str) -> DataError:
        shown = ref if len(ref) <= 80 else ref[:40] + "..."
        return DataError(data_file, line, field, f"image {shown!r}: {reason}")

    try:
        if ref.startswith("data:"):
            decoded = decode_data_uri(ref)
            if decoded is None:
                raise ImageError("not a base64 data: URI")
            media, data = decoded
            name = "image.dcm" if media in _DICOM_MEDIA else ""
            media_type, out = prepare(data, name=name, max_side=max_side)
        elif "://" in ref:
            raise ImageError("only data: URIs and paths relative to the file are read")
        elif not ref.strip():
            raise ImageError("empty path")
        else:
            media_type, out = read(data_file.parent / ref, max_side=max_side)
    except ImageError as exc:
        raise refused(str(exc)) from None
    return {"type": "image_url", "image_url": {"url": data_uri(out, media_type)}}


def _is_dicom(data: bytes, name: str) -> bool:
    return name.lower().endswith(_DICOM_SUFFIXES) or data[128:132] == b"DICM"


def _check_size(width: int, height: int, frames: int = 1) -> None:
    if width * height * frames > MAX_PIXELS:
        raise ImageError(
            f"{width}x{height}{f'x{frames}' if frames > 1 else ''} pixels is over the "
            f"{MAX_PIXELS // 1_000_000} megapixel limit (refused as a possible decompression bomb)"
        )


def _pass_through(data: bytes, side: int) -> tuple[str, bytes]:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by our own limit
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ImageError(
            f"over the {MAX_PIXELS // 1_000_000} megapixel limit (a possible decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError("not a PNG, JPEG, WebP or DICOM image") from None
    except OSError as exc:
        raise ImageError(f"unreadable image ({exc})") from None
    with image:
        fmt = _AS_FORMAT.get(image.format or "", image.format or "")
        media_type = PASS_THROUGH.get(fmt)
        if media_type is None:
            raise ImageError(f"{image.format} images are not read: only PNG, JPEG, WebP and DICOM")
        _check_size(*image.size)
        fits = max(image.size) <= side
        if not fits and fmt == "JPEG":  # decode at a reduced DCT scale, never below the target size
            image.draft(image.mode, (side, side))
        try:
            image.load()  # a truncated or corrupt file fails here, not at the endpoint
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"unreadable {image.format} ({exc})") from None
        if fits and not has_metadata(image):
            return media_type, data
        icc = image.info.get("icc_profile")
        upright = image.getexif().get(_ORIENTATION, 1) == 1
        if fits and upright and fmt == "JPEG":  # metadata only: keep the file's own quantisation
            return media_type, _encode(image, fmt, icc, quality="keep")
        image = ImageOps.exif_transpose(image)  # the orientation EXIF gave is kept in the pixels
        if image.mode == "P":
            image = image.convert("RGBA" if fmt != "JPEG" else "RGB")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        return media_type, _encode(image, fmt, icc)


# What an image file may carry besides pixels and still pass through byte for byte: how to decode
# and show it (JFIF density, Adobe colour transform, PNG gamma, the ICC colour profile), never who,
# where or with what it was taken. Anything else (EXIF, GPS, XMP, IPTC, comments, PNG text) is
# metadata: the image is re-encoded without it.
_HARMLESS_INFO = {
    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "adobe", "adobe_transform",
    "progressive", "progression", "icc_profile", "gamma", "srgb", "chromaticity", "transparency",
    "aspect", "interlace", "loop", "background", "duration", "timestamp", "lossless",
}  # fmt: skip
_ORIENTATION = 0x0112  # the EXIF Orientation tag
_HARMLESS_JPEG_SEGMENTS = {"APP0", "APP14"}  # JFIF, Adobe; APP2 only as the ICC profile


def has_metadata(image) -> bool:
    """Whether a decoded PNG / JPEG / WebP carries anything but pixels and how to show them."""
    if set(image.info) - _HARMLESS_INFO:
        return True
    for marker, payload in getattr(image, "applist", ()):
        if marker not in _HARMLESS_JPEG_SEGMENTS and not (marker == "APP2" and payload.startswith(b"ICC_PROFILE")):
            return True
    return False


def _encode(image, fmt: str, icc: bytes | None = None, **options) -> bytes:
    """The pixels in ``fmt`` with the colour profile and nothing else (no EXIF, XMP or text)."""
    out = io.BytesIO()
    if not options:
        options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {"optimize": True}
    if icc:
        options["icc_profile"] = icc
    image.info = {}  # Pillow copies some info keys into the file it writes: none of them leave
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _render_dicom(data: bytes, side: int) -> bytes:
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError, KeyError) as exc:
        raise ImageError(f"unreadable DICOM ({exc})") from None
    if "PixelData" not in ds:
        raise ImageError("DICOM file without pixel data (or not a DICOM file)")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
    except (AttributeError, TypeError, ValueError):
        raise ImageError("DICOM file without Rows / Columns") from None
    _check_size(columns, rows, frames)
    if frames > 1:
        raise ImageError(f"DICOM file with {frames} frames: export the frame you mean as its own file")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many kinds for a pixel encoding it cannot decode
        raise ImageError(f"cannot decode the DICOM pixel data ({type(exc).__name__}: {exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3:  # colour (pydicom hands YBR back as RGB)
        if pixels.dtype != np.uint8:  # 16-bit colour: scaled from its own range
            pixels = _to_uint8(pixels.astype(np.float64), float(pixels.min()), float(pixels.max()))
        image = Image.fromarray(pixels, mode="RGB")
    else:
        values = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
        low, high = _window(ds, values)
        grey = _to_uint8(values, low, high)
        if photometric == "MONOCHROME1":
            grey = 255 - grey
        image = Image.fromarray(grey, mode="L")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)  # pixels only: no tag, no text chunk
    return out.getvalue()


def _window(ds, values) -> tuple[float, float]:
    """The file's first window (DICOM PS3.3 C.11.2.1.2, linear), else the values' min and max."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    try:
        center = float(center[0] if _is_multi(center) else center)
        width = float(width[0] if _is_multi(width) else width)
    except (TypeError, ValueError, IndexError):
        center = width = None
    if center is not None and width is not None and width >= 1:
        return center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    return float(values.min()), float(values.max())


def _is_multi(value) -> bool:
    return not isinstance(value, str | bytes) and hasattr(value, "__getitem__")


def _to_uint8(values, low: float, high: float):
    import numpy as np

    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.clip(values, low, high) - low) / (high - low) * 255.0
    return np.rint(scaled).astype(np.uint8)


def thumbnail(data: bytes, side: int = THUMBNAIL_SIDE) -> tuple[str, bytes, int, int]:
    """(media type, bytes, width, height) of a small copy of an image medops stored (PNG, JPEG or
    WebP, in its own format), for a self-contained report; pixels only, like every image here."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = _AS_FORMAT.get(image.format or "", image.format or "")
            if fmt not in PASS_THROUGH:
                raise ImageError(f"{image.format} is not an image medops stores")
            image.load()
            if image.mode == "P":
                image = image.convert("RGBA" if fmt != "JPEG" else "RGB")
            image.thumbnail((side, side), Image.Resampling.LANCZOS)
            fast = {"quality": 85} if fmt in ("JPEG", "WEBP") else {"compress_level": 6}  # not optimize: 10x slower
            return PASS_THROUGH[fmt], _encode(image, fmt, **fast), image.width, image.height
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"unreadable stored image ({exc})") from None
