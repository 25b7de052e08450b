"""Regenerate the default acceptance assets (a maintainer's tool; needs Pillow, espeak-ng, ffmpeg).

    python -m ops.acceptance.assets.generate

The outputs are committed as package data, so users never run this.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ops.acceptance.assets import FACE_PNG, SPEECH_WAV

SPEECH_TEXT = ("Hello, this is the flash head acceptance test. "
               "The quick brown fox jumps over the lazy dog.")
SIZE = 512


def draw_face(path: Path) -> None:
    """A front-facing cartoon head: skin oval, hair, eyes, brows, nose, closed mouth."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), (200, 214, 229))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 400, SIZE, SIZE), fill=(60, 90, 140))  # shoulders
    draw.rectangle((216, 350, 296, 420), fill=(232, 190, 160))  # neck
    draw.ellipse((126, 60, 386, 380), fill=(90, 60, 40))  # hair behind the face
    draw.ellipse((146, 96, 366, 396), fill=(240, 200, 170))  # face
    draw.chord((146, 70, 366, 230), 180, 360, fill=(90, 60, 40))  # fringe
    for cx in (210, 302):
        draw.ellipse((cx - 26, 210, cx + 26, 240), fill=(255, 255, 255))  # eye white
        draw.ellipse((cx - 11, 214, cx + 11, 236), fill=(70, 110, 60))  # iris
        draw.ellipse((cx - 5, 220, cx + 5, 230), fill=(10, 10, 10))  # pupil
        draw.line((cx - 30, 196, cx + 28, 190), fill=(70, 45, 30), width=6)  # brow
    draw.polygon([(256, 236), (240, 296), (272, 296)], fill=(220, 170, 140))  # nose
    draw.chord((212, 310, 300, 350), 0, 180, fill=(170, 60, 70))  # lips
    draw.line((214, 326, 298, 326), fill=(120, 30, 40), width=3)  # mouth line
    image.save(path, optimize=True)


def synthesize_speech(path: Path, text: str = SPEECH_TEXT) -> None:
    """espeak-ng speech, resampled to 16 kHz mono PCM16 (the server's native input rate)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-ac", "1", "-ar", "16000",
                        "-c:a", "pcm_s16le", "-map_metadata", "-1", "-fflags", "+bitexact",
                        "-flags:a", "+bitexact", str(path)], check=True)


if __name__ == "__main__":
    draw_face(FACE_PNG)
    synthesize_speech(SPEECH_WAV)
    print(f"wrote {FACE_PNG} and {SPEECH_WAV}")
