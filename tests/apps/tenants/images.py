"""Small images for logo tests, made here so that no test depends on a file."""

from __future__ import annotations

import io
import random

from PIL import Image


def png(width: int = 120, height: int = 40, colour: tuple[int, ...] = (20, 110, 180, 255)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(width: int = 90, height: int = 30, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    colour = (200, 40, 40, 0) if mode == "CMYK" else (200, 40, 40)
    Image.new(mode, (width, height), colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def noisy_png(side: int) -> bytes:
    """A PNG that hardly compresses: random pixels, about three bytes each."""
    pixels = random.Random(side).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, "PNG")
    return buffer.getvalue()


def svg(
    body: str = '<rect width="120" height="40" fill="#1a6"/>', *, head: str = "", attrs: str = ""
) -> bytes:
    return (
        f'{head}<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="120" height="40" viewBox="0 0 120 40"{attrs}>{body}</svg>'
    ).encode()
