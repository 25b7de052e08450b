"""The reference backend opens the face's own mouth: found in the photo, parted there, nowhere else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from inference.backends.mouth import MOUTH_INSIDE, MouthAnimator, find_mouth
from ops.acceptance.assets import FACE_PNG


def _bundled_face() -> np.ndarray:
    return np.array(Image.open(FACE_PNG).convert("RGB"))


def _face_with_lips(line: int) -> np.ndarray:
    """A skin oval on grey with a pair of lips meeting at row `line` (a photo-like mouth: no drawn line)."""
    image = Image.new("RGB", (512, 512), (120, 120, 120))
    draw = ImageDraw.Draw(image)
    draw.ellipse((140, 60, 372, 460), fill=(225, 185, 160))
    draw.ellipse((216, line - 12, 296, line + 1), fill=(185, 95, 100))  # upper lip
    draw.ellipse((216, line, 296, line + 18), fill=(175, 85, 95))  # lower lip
    draw.line((220, line, 292, line), fill=(110, 40, 50), width=2)
    return np.array(image)


def _inside(frame: np.ndarray) -> np.ndarray:
    return np.all(frame == MOUTH_INSIDE.astype(np.uint8), axis=2)


def test_the_bundled_faces_mouth_is_found_at_its_lips() -> None:
    mouth = find_mouth(_bundled_face())
    assert mouth.found and abs(mouth.cx - 256) <= 2 and 40 <= mouth.half_width <= 48
    assert 0.62 < mouth.line / 512 < 0.66  # the lips, not the 72 % where the old renderer drew a mouth


@pytest.mark.parametrize("line", [290, 330, 370])
def test_the_mouth_is_found_wherever_the_lips_are(line: int) -> None:
    mouth = find_mouth(_face_with_lips(line))
    assert mouth.found and abs(mouth.line - line) <= 3 and abs(mouth.cx - 256) <= 3


def test_a_face_without_lips_gets_the_default_mouth() -> None:
    flat = np.full((512, 512, 3), (225, 185, 160), np.uint8)
    mouth = find_mouth(flat)
    assert not mouth.found and mouth.line == int(512 * 0.65)


@pytest.mark.parametrize("image", [_bundled_face(), _face_with_lips(300)], ids=["bundled", "lips-at-59%"])
def test_opening_parts_the_lips_and_changes_nothing_else(image: np.ndarray) -> None:
    mouth = find_mouth(image)
    animator = MouthAnimator(image, mouth)
    frame = np.empty_like(image)
    animator.render(0.0, frame)
    assert np.array_equal(frame, image)
    animator.render(1.0, frame)
    changed = np.nonzero(np.any(frame != image, axis=2))
    # Only the lower lip and the chin under the mouth moved: nothing above the line or beside the lips.
    chin = mouth.line + mouth.lower_lip + 1.3 * mouth.half_width + 4
    assert changed[0].min() >= mouth.line and changed[0].max() < chin
    assert np.abs(changed[1] - mouth.cx).max() <= 1.05 * mouth.half_width + 1
    # One opening, right under the upper lip, about 18 px at its middle; no dark oval anywhere else.
    rows = np.nonzero(_inside(frame)[:, mouth.cx])[0]
    assert rows.min() == mouth.line and 14 <= rows.size <= 22 and np.all(np.diff(rows) == 1)
    assert not _inside(frame)[rows.max() + 2:].any() and not _inside(frame)[: mouth.line].any()
