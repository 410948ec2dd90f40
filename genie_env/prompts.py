"""Prompt images for GenieWorld: any image a user hands us, made into a model-sized RGB frame.

``load_prompt_image`` takes a path, a numpy array or a PIL image of any size and mode and returns uint8
(H, W, 3). ``from_text`` (a stand-in for Genie 2's text-to-image prompting) lives in
:mod:`genie_env.text_prompt`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def load_prompt_image(image, size: tuple[int, int]) -> np.ndarray:
    """A prompt as uint8 (H, W, 3) with (H, W) = size.

    image: a file path (str / Path), a PIL image, or a numpy array of shape (H, W), (H, W, 1), (H, W, 3) or
    (H, W, 4), dtype uint8 (0..255) or float (0..1). Grey is repeated into three channels; palette and other
    modes become RGB. Transparency, whatever the input type (an RGBA / LA array, file or PIL image, a palette
    with a transparent colour), is composited over black: out = rgb * alpha / 255, so a fully transparent pixel
    is black and an opaque one keeps its colour. The image is then resized to `size` with bilinear filtering
    (no cropping).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"prompt image {str(path)!r} does not exist; pass a path to a PNG/JPEG file")
        try:
            with Image.open(path) as opened:
                array = _pil_to_array(opened)
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{str(path)!r} is not an image file PIL can read ({e}); use a PNG or JPEG") from e
    elif isinstance(image, Image.Image):
        array = _pil_to_array(image)
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise TypeError(
            f"prompt_image must be a file path, a numpy array or a PIL image, got {type(image).__name__}"
        )
    pil = Image.fromarray(_array_to_rgb(array))
    height, width = int(size[0]), int(size[1])
    if pil.size != (width, height):
        pil = pil.resize((width, height), Image.BILINEAR)
    return np.asarray(pil, dtype=np.uint8).copy()


def _pil_to_array(pil) -> np.ndarray:
    """uint8 (H, W, 4) if the image has transparency (alpha band or a transparent palette colour), else (H, W, 3)."""
    if pil.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in pil.info:
        return np.asarray(pil.convert("RGBA"))
    return np.asarray(pil.convert("RGB"))


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    a = array
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise ValueError(
            f"a prompt array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with channels last, got shape "
            f"{array.shape}; for (3, H, W) use array.transpose(1, 2, 0)"
        )
    if a.dtype == np.uint8:
        pass
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("a float prompt array contains NaN or inf")
        if a.min() < 0.0 or a.max() > 1.0:
            raise ValueError(f"a float prompt array must hold values in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
        a = (a * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        if a.dtype == np.bool_ or a.min() < 0 or a.max() > 255:
            raise ValueError("an integer prompt array must hold values in [0, 255]")
        a = a.astype(np.uint8)
    else:
        raise ValueError(f"unsupported prompt array dtype {a.dtype}; use uint8 in [0, 255] or float in [0, 1]")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.shape[-1] == 4:
        rgb, alpha = a[..., :3].astype(np.float32), a[..., 3:].astype(np.float32) / 255.0
        a = (rgb * alpha + 0.5).astype(np.uint8)  # composite over black
    return np.ascontiguousarray(a)


def from_text(text: str, size: tuple[int, int] = (64, 64), seed: int = 0) -> tuple[np.ndarray, str]:
    """A prompt frame uint8 (H, W, 3) and its mission from a description; see :func:`genie_env.text_prompt.from_text`."""
    from genie_env.text_prompt import from_text as _from_text  # lazy: MiniGrid and the raycaster load on first use

    return _from_text(text, size=size, seed=seed)
