"""Where a face's mouth is, found from the photo, and how the reference backend opens it.

The lips are the reddest pixels in the lower middle of the face; the mouth line is the darkest
row across them. Opening the mouth moves the lower lip and chin down with a smooth displacement
that is largest under the mouth line and fades out sideways and towards the neck, so the face's
own lips part (no second mouth is drawn) and no seam appears; the gap shows the mouth's inside.
A photo without visible lips gets a mouth line at 65 % of the height (where a centred portrait
has it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOUTH_INSIDE = np.array([70, 18, 24], dtype=np.float32)
MAX_OPENING = 18 / 512  # the lips part by at most this share of the frame height
DEFAULT_LINE = 0.65  # of the height
SEARCH_ROWS, SEARCH_COLUMNS = (0.50, 0.85), (0.30, 0.70)
MIN_REDNESS = 25.0  # how much redder than the area's median a lip pixel is (R - (G+B)/2)


@dataclass(frozen=True)
class Mouth:
    """The mouth of one face in output pixels: centre column, the line between the lips, the lips'
    half width, and how far the lower lip reaches below the line."""

    cx: int
    line: int
    half_width: int
    lower_lip: int
    found: bool
    gap: int = 0  # rows between the line and the lower lip's top (a drawn mouth line); hidden when open

    @classmethod
    def default(cls, height: int, width: int) -> Mouth:
        return cls(width // 2, int(height * DEFAULT_LINE), max(4, width // 11), max(2, height // 40), False)


def find_mouth(image: np.ndarray) -> Mouth:
    """The mouth of the face in `image` (H x W x 3 uint8), or the default one when no lips stand out."""
    height, width = image.shape[:2]
    top, left = int(height * SEARCH_ROWS[0]), int(width * SEARCH_COLUMNS[0])
    area = image[top:int(height * SEARCH_ROWS[1]), left:int(width * SEARCH_COLUMNS[1])].astype(np.float32)
    redness = area[..., 0] - (area[..., 1] + area[..., 2]) / 2
    lips = redness >= np.median(redness) + MIN_REDNESS
    per_row = lips.sum(axis=1)
    if per_row.max(initial=0) < max(4, width // 40):
        return Mouth.default(height, width)
    peak = int(per_row.argmax())
    rows = _run_around(per_row >= per_row[peak] * 0.3, peak)
    columns = np.nonzero(lips[rows[0]:rows[1]].any(axis=0))[0]
    span = _run_around(np.isin(np.arange(lips.shape[1]), columns), int(np.median(columns)))
    if span[1] - span[0] < width // 20:
        return Mouth.default(height, width)
    cx = left + (span[0] + span[1]) // 2
    half_width = (span[1] - span[0]) // 2
    # The mouth line: the darkest row across the middle of the lips (and a few rows around them).
    middle = slice(cx - left - half_width // 2, cx - left + half_width // 2 + 1)
    first, last = max(0, rows[0] - 3), min(area.shape[0], rows[1] + 3)
    luminance = area[first:last, middle].mean(axis=(1, 2))
    darkest = int(luminance.argmin())
    # The lips part just under the dark line (it stays on the upper lip as its edge); rows of skin
    # between it and the lower lip (a drawn face) are hidden once the mouth opens.
    below = darkest + _run_around(luminance <= luminance[darkest] * 1.1, darkest)[1] - darkest
    line = top + first + below
    lip_rows = lips[line - top:line - top + 5, middle].mean(axis=1) >= 0.5
    gap = int(lip_rows.argmax()) if lip_rows.any() else 0
    return Mouth(cx, line, half_width, max(2, top + rows[1] - line), True, gap)


def _run_around(mask: np.ndarray, index: int) -> tuple[int, int]:
    """[start, end) of the run of True in `mask` that contains `index`."""
    start, end = index, index + 1
    while start > 0 and mask[start - 1]:
        start -= 1
    while end < mask.size and mask[end]:
        end += 1
    return start, end


class MouthAnimator:
    """Renders one face with its mouth open by 0..1; the displacement field is computed once."""

    def __init__(self, base: np.ndarray, mouth: Mouth):
        self.base = base
        self.mouth = mouth
        height, width = base.shape[:2]
        self.max_opening = max(1.0, MAX_OPENING * height)
        reach = mouth.half_width * 1.05
        fade = mouth.lower_lip + 2 + 1.2 * mouth.half_width  # rows below the line where the chin stops moving
        self.top = mouth.line
        self.bottom = min(height, int(mouth.line + fade) + 1)
        self.left, self.right = max(0, int(mouth.cx - reach)), min(width, int(mouth.cx + reach) + 1)
        ys = np.arange(self.top, self.bottom, dtype=np.float32)[:, None] - mouth.line
        xs = (np.arange(self.left, self.right, dtype=np.float32)[None, :] - mouth.cx) / reach
        sideways = np.sqrt(np.clip(1 - xs**2, 0, 1))  # the lens shape of parted lips
        firm = mouth.lower_lip + 2
        downward = np.where(ys <= firm, 1.0, 0.5 + 0.5 * np.cos(np.pi * np.clip((ys - firm) / (fade - firm), 0, 1)))
        self.weight = (sideways * downward).astype(np.float32)  # displacement per pixel of opening
        self.rows = ys + mouth.line

    def render(self, openness: float, out: np.ndarray) -> None:
        """`base` with the lips parted by `openness` (0..1) into `out`."""
        out[:] = self.base
        drop = openness * self.max_opening
        if drop < 0.5:
            return
        shift = self.weight * drop
        source = self.rows - shift  # each output pixel shows the base pixel `shift` rows above it
        inside = source < self.mouth.line + self.mouth.gap * np.minimum(shift, 1.0)  # between the parted lips
        source = np.clip(source, self.mouth.line, self.base.shape[0] - 1)
        upper = np.floor(source).astype(np.int64)
        lower = np.minimum(upper + 1, self.base.shape[0] - 1)
        blend = (source - upper)[..., None]
        columns = np.arange(self.left, self.right)[None, :]
        moved = self.base[upper, columns] * (1 - blend) + self.base[lower, columns] * blend
        region = np.where(inside[..., None], MOUTH_INSIDE, moved)
        out[self.top:self.bottom, self.left:self.right] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
