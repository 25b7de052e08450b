"""Image in: a reference photo (PNG, JPEG, WebP, HEIC) -> upright RGB just big enough for the model.

Nothing is decoded before the header has passed the limits: the declared pixel count
(FLASHHEAD_MAX_IMAGE_PIXELS), the aspect ratio (FLASHHEAD_MAX_IMAGE_ASPECT: a face is not 1:6000)
and a 16-pixel minimum side. Pillow's own decompression-bomb check is set to the same pixel limit
and its warning is an error. A JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still covers
the output (`draft`); any other image is first shrunk by an integer factor (`reduce`), then
resized, so the resize never allocates more than RESIZE_BUDGET. The result covers the output
square and is no larger: preparing the avatar from it is cheap wherever it runs.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import BadInput, TooLarge, UnsupportedMedia

if TYPE_CHECKING:
    from PIL import Image

FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "HEIF")  # the only decoders Pillow may try
REMEDY = "upload a PNG, JPEG, WebP or HEIC photo"
MIN_SIDE = 16
RESIZE_BUDGET = 64 * 2**20  # bytes the resize may allocate (its intermediate and its output)
ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose).
TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
             7: "TRANSVERSE", 8: "ROTATE_90"}


@dataclass(frozen=True)
class ImageLimits:
    """What one decoded photo may cost (FLASHHEAD_MAX_IMAGE_* settings)."""

    max_bytes: int
    max_pixels: int
    max_aspect: float
    cover: int = 512  # the output's side: the photo is brought down to just cover it


@dataclass(frozen=True)
class DecodedImage:
    """An upright photo: `pixels` (H x W x 3 uint8, short side at most `cover`) and the photo's own size."""

    pixels: np.ndarray
    width: int
    height: int


def decode_image(data: bytes, limits: ImageLimits) -> DecodedImage:
    """Decode PNG/JPEG/WebP/HEIC bytes within `limits`; BadInput / TooLarge / UnsupportedMedia otherwise."""
    from PIL import Image, UnidentifiedImageError
    from pillow_heif import register_heif_opener

    register_heif_opener()
    if not data:
        raise BadInput("the image is empty", REMEDY)
    if len(data) > limits.max_bytes:
        raise TooLarge(f"the image is {len(data)} bytes; the limit is {limits.max_bytes} (FLASHHEAD_MAX_IMAGE_BYTES)",
                       "send a smaller photo (512x512 is the output size)")
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data), formats=_registered(FORMATS))
            width, height = picture.size
            _check_header(width, height, limits)
            orientation = _orientation(picture)
            pixels = _decode_small(picture, limits.cover)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        declared = re.search(r"\((\d+) pixels\)", str(error))
        raise TooLarge(f"the image declares {declared.group(1) if declared else 'more'} pixels; the limit is "
                       f"{limits.max_pixels} (FLASHHEAD_MAX_IMAGE_PIXELS)",
                       "downscale the photo (the output is 512x512)") from None
    except UnidentifiedImageError:
        raise UnsupportedMedia("not an image in a supported format", REMEDY) from None
    except MemoryError:
        raise TooLarge("decoding the image ran out of memory", "send a smaller photo") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as error:
        raise BadInput(f"the image is corrupt or truncated: {str(error)[:200]}", "upload the file again") from None
    if orientation in TRANSPOSE:
        pixels = pixels.transpose(getattr(Image.Transpose, TRANSPOSE[orientation]))
        if orientation in (5, 6, 7, 8):  # a quarter turn: the upright photo is height x width
            width, height = height, width
    return DecodedImage(np.asarray(pixels.convert("RGB"), dtype=np.uint8).copy(), width, height)


def _registered(formats: tuple[str, ...]) -> list[str]:
    """The formats this Pillow opens by that name (MPO comes through the JPEG opener in some versions)."""
    from PIL import Image

    Image.init()
    return [name for name in formats if name in Image.OPEN]


def _check_header(width: int, height: int, limits: ImageLimits) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise BadInput(f"the image is {width}x{height}; each side must be at least {MIN_SIDE} pixels",
                       "upload a real photo of a face")
    if width * height > limits.max_pixels:
        raise TooLarge(f"the image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels} "
                       "(FLASHHEAD_MAX_IMAGE_PIXELS)", "downscale the photo (the output is 512x512)")
    aspect = max(width, height) / min(width, height)
    if aspect > limits.max_aspect:
        raise BadInput(f"the image is {width}x{height}, an aspect ratio of {aspect:.4g}:1; the limit is "
                       f"{limits.max_aspect:g}:1 (FLASHHEAD_MAX_IMAGE_ASPECT)", "crop the photo around the face")


def _orientation(picture: Image.Image) -> int:
    try:
        value = picture.getexif().get(ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation
        return 1
    return value if isinstance(value, int) else 1


def _decode_small(image: Image.Image, cover: int) -> Image.Image:
    """Decode and shrink to the smallest size whose short side still covers `cover` (no upscaling)."""
    from PIL import Image

    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", (cover, cover))  # decode at 1/2..1/8 scale while each side stays >= cover
    image.load()
    if image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    factor = min(image.size) // cover
    if factor >= 2:
        image = image.reduce(factor)  # integer box shrink: allocates only its output
    scale = cover / min(image.size)
    if scale >= 1:
        return image
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    needed = 4 * target[0] * (image.height + target[1])  # horizontal pass, then the output
    if needed > RESIZE_BUDGET:
        raise TooLarge(f"resizing {image.width}x{image.height} to {target[0]}x{target[1]} needs {needed} bytes; "
                       f"the budget is {RESIZE_BUDGET}", "crop the photo around the face")
    return image.resize(target, Image.Resampling.LANCZOS)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
