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

LEVELS = 33  # colours of a signed map: 16 shades each side of white (a few hundred bytes per map)


def png_bytes(img: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode a uint8 image as PNG.

    Args:
        img: uint8 (H,W) grey, (H,W,3) RGB, or (H,W) indices into `palette`.
        palette: optional uint8 (K,3) colours (K <= 256): an indexed PNG.

    Returns:
        The PNG file's bytes.
    """
    h, w = img.shape[:2]
    colour = 3 if palette is not None else 0 if img.ndim == 2 else 2
    raw = b"".join(b"\x00" + np.ascontiguousarray(img[y]).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    plte = chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes()) if palette is not None else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)) + plte
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def data_uri(img: np.ndarray, palette: np.ndarray | None = None) -> str:
    """A `data:image/png;base64,...` URI of a uint8 image (indexed when a palette is given)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(img, palette)).decode("ascii")


@lru_cache(maxsize=1)
def _diverging() -> np.ndarray:
    """LEVELS colours of RdBu_r from -1 (blue) through 0 (white) to +1 (red), uint8 (LEVELS,3)."""
    import matplotlib

    return (matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, LEVELS))[:, :3] * 255).round().astype(np.uint8)


def grey_uri(x: np.ndarray) -> str:
    """A [0,1] image (digit or counterfactual) as a grey PNG URI."""
    return data_uri((np.clip(np.nan_to_num(np.asarray(x, np.float32)), 0, 1) * 255).round().astype(np.uint8))


def signed_uri(a: np.ndarray) -> tuple[str, float]:
    """A signed map on its own symmetric scale ±max|a| as an indexed RdBu_r PNG URI: (URI, scale).

    Used for change maps x_cf - x (red = ink added, blue = removed) and for heatmaps, which the
    page lays over the faint digit (red = evidence for the explained class, blue = against).
    """
    a = np.nan_to_num(np.asarray(a, np.float32))
    scale = float(np.abs(a).max())
    unit = a / scale if scale > 0 else np.zeros_like(a)
    idx = np.clip(((unit + 1) / 2 * (LEVELS - 1)).round(), 0, LEVELS - 1).astype(np.uint8)
    return data_uri(idx, _diverging()), scale
