"""Prompt images: one rule for transparency whatever the input type (path, PIL image, numpy array)."""

import numpy as np
from PIL import Image

from genie_env.prompts import load_prompt_image

SIZE = (16, 16)


def test_transparency_is_composited_over_black_for_every_input_type(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255  # one transparent, one opaque pixel
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    expected = (rgba[..., :3] * (rgba[..., 3:] / 255.0) + 0.5).astype(np.uint8)
    for image in (rgba, rgba.astype(np.float32) / 255.0, Image.fromarray(rgba), path, str(path)):
        out = load_prompt_image(image, SIZE)
        np.testing.assert_allclose(out, expected, atol=1)  # float input rounds once more
    out = load_prompt_image(path, SIZE)
    np.testing.assert_array_equal(out[0, 0], 0)
    np.testing.assert_array_equal(out[0, 1], rgba[0, 1, :3])


def test_grey_alpha_and_transparent_palette_follow_the_same_rule(tmp_path):
    la = np.zeros((16, 16, 2), np.uint8)
    la[..., 0], la[..., 1] = 200, 128
    out = load_prompt_image(Image.fromarray(la), SIZE)
    np.testing.assert_array_equal(out, np.full((16, 16, 3), round(200 * 128 / 255), np.uint8))
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 250, 10, 10] + [0] * 762)
    palette.info["transparency"] = 1  # colour 1 is transparent
    path = tmp_path / "palette.png"
    palette.save(path, transparency=1)
    for image in (palette, path):
        np.testing.assert_array_equal(load_prompt_image(image, SIZE), 0)


def test_opaque_images_are_unchanged(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    for image in (rgb, Image.fromarray(rgb), tmp_path / "rgb.png", np.dstack([rgb, np.full((16, 16), 255, np.uint8)])):
        np.testing.assert_array_equal(load_prompt_image(image, SIZE), rgb)
