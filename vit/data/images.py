"""Reading one image file into the 8-bit RGB picture the model expects, or saying why not.

Every image, whatever its file holds (grayscale, palette, alpha, CMYK, 16-bit, an EXIF rotation),
becomes an upright `PIL.Image` in mode RGB. A file that cannot be used raises `UnusableImage`
with a short reason; callers skip it and record the reason (docs/datasets.md).
"""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Extensions looked at in folders; anything else is reported as not an image.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm")

# Never let Pillow pad a truncated file with grey: a truncated image is unusable, not a sample.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow warns above its own pixel limit; `probe_image` applies data.max_image_pixels instead.
# The filter is set once, here: a `warnings.catch_warnings()` block around each image would
# reset Python's once-per-place memory of every warning, so that a warning meant to show once
# (Paddle's BatchNorm one, in every ResNet step) would print again after each image.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class UnusableImage(Exception):
    """An image file that cannot be used; `reason` says why in a few words."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def is_image_file(path) -> bool:
    """Whether `path` has an image extension (the content is checked when it is read)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def probe_image(path, max_pixels: int):
    """Read only the header: return (format, width, height), or raise `UnusableImage`.

    Cheap enough for every file of a large data set; it catches non-images and decompression
    bombs before any pixel is decoded.
    """
    try:
        with Image.open(path) as image:
            fmt, (width, height) = image.format, image.size
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise UnusableImage(path, "not an image Pillow can read") from None
    except OSError as error:
        raise UnusableImage(path, _reason(error, "unreadable")) from None
    if width * height > max_pixels:
        raise UnusableImage(path, f"{width}x{height} = {width * height:,} pixels is over "
                                  f"data.max_image_pixels ({max_pixels:,}); a possible "
                                  "decompression bomb")
    return fmt, width, height


def load_image(path, max_pixels: int) -> Image.Image:
    """Decode `path` fully into an upright 8-bit RGB image, or raise `UnusableImage`."""
    probe_image(path, max_pixels)
    try:
        with Image.open(path) as image:
            image.load()  # decodes everything: a truncated file fails here
            return to_rgb(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise UnusableImage(path, _reason(error, "cannot be decoded")) from None


def _reason(error: Exception, what: str) -> str:
    message = str(error)
    if "truncated" in message.lower() or "broken data stream" in message:
        return "truncated file"
    return f"{what} ({message})"


def to_rgb(image: Image.Image) -> Image.Image:
    """Return an upright 8-bit RGB copy of any Pillow image.

    - EXIF orientation is applied (phone photos are stored sideways).
    - 16-bit and 32-bit integer images are scaled to 8 bits, not clipped.
    - Transparent images (RGBA, LA, palette with transparency) are composited onto white.
    - CMYK, grayscale, 1-bit and palette images are converted.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = Image.fromarray(_to_uint8(np.asarray(image)))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale high-bit-depth pixels to 0-255: 16-bit ranges by 255/65535, floats in [0, 1] by
    255, and values already within 0-255 as they are."""
    is_float = values.dtype.kind == "f"
    values = values.astype(np.float64)
    peak = values.max(initial=0.0)
    if peak > 255:
        values = values * (255.0 / 65535.0)
    elif is_float and peak <= 1.0:
        values = values * 255.0
    return np.clip(np.round(values), 0, 255).astype(np.uint8)
