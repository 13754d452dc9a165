"""Small PNGs (inline data URIs) of digits, counterfactuals, change maps and heatmaps.

A plain PNG encoder (numpy + zlib) keeps the site build free of heavy imaging libraries;
each 28x28 image is a few hundred bytes and is upscaled by the browser (pixelated).
"""

from __future__ import annotations

import base64
import struct
import zlib
from functools import lru_cache

import numpy as np

HEAT_ALPHA = 0.65  # heatmap opacity over the faint digit, as in attributions_heatmaps.png


def png_bytes(img: np.ndarray) -> bytes:
    """Encode a uint8 image as PNG.

    Args:
        img: uint8 (H,W) grey or (H,W,3) RGB.

    Returns:
        The PNG file's bytes.
    """
    h, w = img.shape[:2]
    colour = 0 if img.ndim == 2 else 2
    raw = b"".join(b"\x00" + np.ascontiguousarray(img[y]).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def data_uri(img: np.ndarray) -> str:
    """A `data:image/png;base64,...` URI of a uint8 image."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(img)).decode("ascii")


@lru_cache(maxsize=1)
def _diverging() -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.float32)


def _grey(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(x, np.float32)), 0, 1)


def grey_uri(x: np.ndarray) -> str:
    """A [0,1] image (digit or counterfactual) as a grey PNG URI."""
    return data_uri((_grey(x) * 255).round().astype(np.uint8))


def signed_rgb(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Colour a signed map with RdBu_r on its own symmetric scale ±max|a| (float RGB 0..255, scale)."""
    a = np.nan_to_num(np.asarray(a, np.float32))
    scale = float(np.abs(a).max())
    unit = a / scale if scale > 0 else np.zeros_like(a)
    return _diverging()[np.clip(((unit + 1) / 2 * 255).round(), 0, 255).astype(int)], scale


def change_uri(delta: np.ndarray) -> tuple[str, float]:
    """A change map x_cf - x on its own scale (red = added, blue = removed): (URI, scale)."""
    rgb, scale = signed_rgb(delta)
    return data_uri(rgb.round().astype(np.uint8)), scale


def heatmap_uri(attr: np.ndarray, x: np.ndarray) -> tuple[str, float]:
    """An attribution map over the faint digit on its own scale (red = for, blue = against): (URI, scale)."""
    rgb, scale = signed_rgb(attr)
    digit = (_grey(x) * 255)[..., None]
    return data_uri(((1 - HEAT_ALPHA) * digit + HEAT_ALPHA * rgb).round().astype(np.uint8)), scale
