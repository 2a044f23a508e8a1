"""Every kind of image file becomes an upright 8-bit RGB picture, or a named reason to skip it."""

import numpy as np
import pytest
from PIL import Image

from conftest import write_image
from vit.data.images import UnusableImage, load_image, probe_image

BIG = 10 ** 9


def pixel(path):
    image = load_image(path, BIG)
    assert image.mode == "RGB"
    return np.asarray(image)[0, 0].tolist()


def test_grayscale_becomes_three_equal_channels(tmp_path):
    assert pixel(write_image(tmp_path / "g.png", "L", color=77)) == [77, 77, 77]


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    assert pixel(write_image(tmp_path / "d.png", "I;16", color=65535)) == [255, 255, 255]
    assert pixel(write_image(tmp_path / "h.png", "I;16", color=32896)) == [128, 128, 128]


def test_rgba_is_composited_on_white(tmp_path):
    assert pixel(write_image(tmp_path / "a.png", "RGBA", color=(0, 0, 255, 0))) == [255, 255, 255]
    assert pixel(write_image(tmp_path / "b.png", "RGBA", color=(0, 0, 255, 255))) == [0, 0, 255]


def test_palette_and_cmyk_become_rgb(tmp_path):
    assert pixel(write_image(tmp_path / "p.png", "P")) == [200, 30, 30]
    red = pixel(write_image(tmp_path / "c.jpg", "CMYK", color=(0, 255, 255, 0)))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (30, 10), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(path, BIG).size == (10, 30)


def test_truncated_and_non_image_files_say_why(tmp_path):
    whole = write_image(tmp_path / "w.jpg", size=(64, 64))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(UnusableImage, match="truncated"):
        load_image(cut, BIG)
    text = tmp_path / "t.jpg"
    text.write_text("hello")
    with pytest.raises(UnusableImage, match="not an image"):
        load_image(text, BIG)


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    path = write_image(tmp_path / "big.png", size=(300, 200))
    assert probe_image(path, 60_000)[1:] == (300, 200)
    with pytest.raises(UnusableImage, match="60,000 pixels is over data.max_image_pixels"):
        probe_image(path, 59_999)
