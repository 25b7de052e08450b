"""A media corpus generated at test time (Python, PyAV, Pillow and ffmpeg; no checked-in files).

Each member says what a correct server answers: `ok` with the expected duration (audio) or
upright size (image), or an error status with words its message must contain; `either` for
inputs where decoding part of the file or refusing it are both right (truncated files).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# Sample formats a WAV carries (packed): format tag, bits, numpy dtype, full scale.
WAV_FORMATS = {"u8": (1, 8, np.uint8), "s16": (1, 16, np.int16), "s24": (1, 24, None), "s32": (1, 32, np.int32),
               "flt": (3, 32, np.float32), "dbl": (3, 64, np.float64)}
RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 352800, 384000]


@dataclass
class Member:
    name: str
    data: bytes
    expect: str  # "ok" | "error" | "either"
    seconds: float = 0.0  # ok: the audio's true duration
    size: tuple[int, int] = (0, 0)  # ok: the upright image's width and height
    status: int = 0  # error: the HTTP status
    mentions: list[str] = field(default_factory=list)  # error: words the message must contain
    tolerance: float = 0.002  # ok: seconds the decoded audio may differ by (codec padding)


def tone(seconds: float, rate: int, channels: int) -> np.ndarray:
    """(n, channels) float64 in [-0.4, 0.4]: a 180 Hz tone gated at 4 Hz, the same on every channel."""
    t = np.arange(max(1, round(seconds * rate))) / rate
    mono = 0.4 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 4 * t) >= 0)
    return np.repeat(mono[:, None], channels, axis=1)


def wav(samples: np.ndarray, rate: int, fmt: str = "s16", *, declared_rate: int | None = None,
        declared_channels: int | None = None, declared_size: int | None = None) -> bytes:
    """A WAV file written by hand, so its header can say anything."""
    tag, bits, dtype = WAV_FORMATS[fmt]
    channels = samples.shape[1]
    if fmt == "u8":
        data = (samples * 127 + 128).astype(np.uint8).tobytes()
    elif fmt == "s24":
        ints = (samples * (2**23 - 1)).astype("<i4")
        data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    elif tag == 3:
        data = samples.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    else:
        data = (samples * (2 ** (bits - 1) - 1)).astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    channels = declared_channels if declared_channels is not None else channels
    rate = declared_rate if declared_rate is not None else rate
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", tag, channels % 65536, rate % 2**32, (rate * block) % 2**32, block % 65536, bits)
    size = len(data) if declared_size is None else declared_size
    return (b"RIFF" + struct.pack("<I", (36 + len(data)) % 2**32) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt_chunk + b"data" + struct.pack("<I", size) + data)


def encode(samples: np.ndarray, rate: int, codec: str, container: str, *, sample_format: str | None = None,
           layout: str | None = None, tmp: Path) -> bytes:
    """Encode with the ffmpeg command line (what a user's file would come from)."""
    source = tmp / "corpus-source.wav"
    source.write_bytes(wav(samples, rate, "flt"))
    target = tmp / f"corpus-out.{container}"
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:a", codec]
    if sample_format:
        command += ["-sample_fmt", sample_format]
    if layout:
        command += ["-channel_layout", layout]
    if codec in ("libvorbis", "vorbis", "aac"):
        command += ["-strict", "-2"]
    subprocess.run([*command, str(target)], check=True)
    return target.read_bytes()


def audio_members(tmp: Path, max_seconds: float) -> list[Member]:
    """Channel counts 1-64, sample formats, rates 1 Hz-384 kHz, codecs, truncated and lying files."""
    members: list[Member] = []
    formats = list(WAV_FORMATS)
    # Every channel count 1-64, cycling through the WAV sample formats and the common rates.
    for channels in range(1, 65):
        fmt, rate = formats[channels % len(formats)], RATES[channels % len(RATES)]
        members.append(Member(f"wav {channels} ch {fmt} {rate} Hz", wav(tone(0.1, rate, channels), rate, fmt), "ok",
                              seconds=0.1))
    for channels in (65, 128):
        members.append(Member(f"wav {channels} channels", wav(tone(0.05, 16000, channels), 16000), "error",
                              status=413, mentions=[f"{channels} channels", "the limit is 64"]))
    # Rates from 1 Hz to 384 kHz, and past it.
    for rate in (1, 2, 7, 100, 1000, 4000, 384000):
        seconds = 2.0 if rate < 8 else 0.2
        members.append(Member(f"wav {rate} Hz", wav(tone(seconds, rate, 1), rate), "ok", seconds=seconds))
    members.append(Member("wav 384001 Hz", wav(tone(0.05, 384001, 1), 384001), "error", status=400,
                          mentions=["384001 Hz", "384000"]))
    members.append(Member("wav claiming 2 GHz", wav(tone(0.01, 16000, 1), 16000, declared_rate=2_000_000_000),
                          "error", status=400, mentions=["2000000000 Hz"]))
    # Shorter than one 16 kHz sample, or nothing at all.
    for rate in (48000, 384000):
        members.append(Member(f"one sample at {rate} Hz", wav(tone(1 / rate, rate, 1), rate), "error", status=400,
                              mentions=["less than one sample at 16 kHz", "the minimum is 0.0625 ms"]))
    members.append(Member("no samples", wav(np.zeros((0, 1)), 16000), "error", status=400))
    # Codecs and the sample formats their decoders give (planar and packed), several layouts.
    tone_48k = {channels: tone(0.3, 48000, channels) for channels in (1, 2, 6, 8)}
    coded = [("flac", "flac", None, None, 1), ("flac", "flac", "s32", None, 2), ("flac", "flac", None, "5.1", 6),
             ("flac", "flac", None, "7.1", 8), ("libmp3lame", "mp3", None, None, 1),
             ("libmp3lame", "mp3", None, None, 2),
             ("libvorbis", "ogg", None, None, 2), ("libvorbis", "ogg", None, "5.1", 6),
             ("libopus", "opus", None, None, 1), ("libopus", "opus", None, "5.1", 6),
             ("aac", "m4a", None, None, 2), ("aac", "m4a", None, "7.1", 8), ("alac", "m4a", "s16p", None, 2),
             ("alac", "m4a", "s32p", None, 1), ("pcm_s16le_planar", "nut", None, None, 2),
             ("pcm_s32le_planar", "nut", None, None, 8), ("pcm_s8_planar", "nut", None, None, 3),
             ("pcm_f64le", "nut", None, None, 2), ("mp2", "mp2", None, None, 2), ("ac3", "ac3", None, "5.1", 6)]
    encoded: dict[str, bytes] = {}
    for codec, container, sample_format, layout, channels in coded:
        samples = tone_48k.get(channels, tone(0.3, 48000, channels))
        name = f"{container} {codec} {sample_format or ''} {layout or channels}".replace("  ", " ")
        data = encode(samples, 48000, codec, container, sample_format=sample_format, layout=layout, tmp=tmp)
        encoded[name] = data
        lossless = codec.startswith(("flac", "pcm", "alac"))
        members.append(Member(name, data, "ok", seconds=0.3, tolerance=0.002 if lossless else 0.08))
    # Truncated files: whatever decodes before the cut, or a clear refusal.
    for name, data in list(encoded.items())[::3]:
        members.append(Member(f"{name} cut in half", data[: len(data) // 2], "either"))
        members.append(Member(f"{name} first 60 bytes", data[:60], "either"))
    # Headers that lie.
    clip = tone(0.2, 16000, 1)
    members.append(Member("wav size 0xFFFFFFFF (streamed)", wav(clip, 16000, declared_size=0xFFFFFFFF), "ok",
                          seconds=0.2))
    members.append(Member("wav size claims half", wav(clip, 16000, declared_size=3200), "either"))
    members.append(Member("wav 0 channels", wav(clip, 16000, declared_channels=0), "error", status=415))
    members.append(Member("wav rate 0", wav(clip, 16000, declared_rate=0), "error", status=415))
    members.append(Member("mp3 after junk", b"\x00junk" * 50 + encoded["mp3 libmp3lame 1"], "either"))
    members.append(Member("metadata not UTF-8", _bad_metadata(tmp), "ok", seconds=0.2))
    members.append(Member("random bytes", np.random.default_rng(7).bytes(5000), "error", status=415))
    members.append(Member("video without audio", _video_only(tmp), "error", status=415, mentions=["no audio stream"]))
    # Long: stopped at the limit while decoding, whatever the header says.
    long_seconds = max_seconds + 30
    members.append(Member(f"{long_seconds:g} s of 192 kHz flac", _silence(tmp, 192000, long_seconds, "flac"), "error",
                          status=413, mentions=[f"longer than {max_seconds:g} s"]))
    members.append(Member(f"{long_seconds:g} s of 8 kHz u8 wav", wav(np.zeros((int(long_seconds * 8000), 1)), 8000,
                                                                     "u8"), "error", status=413,
                          mentions=[f"longer than {max_seconds:g} s"]))
    return members


def _silence(tmp: Path, rate: int, seconds: float, suffix: str) -> bytes:
    target = tmp / f"silence.{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"anullsrc=r={rate}:cl=mono", "-t",
                    str(seconds), str(target)], check=True)
    return target.read_bytes()


def _bad_metadata(tmp: Path) -> bytes:
    source, target = tmp / "meta-source.wav", tmp / "meta.mp3"
    source.write_bytes(wav(tone(0.2, 16000, 1), 16000))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-metadata", "title=bad\udcff\udcfe",
                    str(target)], check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    return target.read_bytes()


def _video_only(tmp: Path) -> bytes:
    target = tmp / "video.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=blue:s=64x64:d=0.2", "-pix_fmt",
                    "yuv420p", str(target)], check=True)
    return target.read_bytes()


# ---- images ------------------------------------------------------------------------------------------------


def _save(image: object, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)  # type: ignore[attr-defined]
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height and ends after its header (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def jpeg_header(width: int, height: int) -> bytes:
    """A complete small JPEG whose SOF0 is rewritten to declare width x height (a header-only JPEG is
    "not an image" to Pillow 12 but a bomb to Pillow 13: the lie must be in a file every version reads)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 90, 60)).save(buffer, "JPEG", quality=80)
    data = bytearray(buffer.getvalue())
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, height, width)
    return bytes(data)


def portrait(width: int, height: int) -> np.ndarray:
    """A face-like picture with a red marker in the top-left corner."""
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (40, 70, 160)
    face = ((xs - width / 2) / (width * 0.35)) ** 2 + ((ys - height * 0.5) / (height * 0.4)) ** 2 <= 1
    image[face] = (230, 190, 160)
    image[: max(1, height // 10), : max(1, width // 10)] = (255, 0, 0)
    return image


def image_members(tmp: Path, max_pixels: int, max_aspect: float) -> list[Member]:
    """Extreme aspect ratios, huge declared sizes, tiny, 16-bit, CMYK, palette, animated, EXIF rotations."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    members: list[Member] = []
    face = Image.fromarray(portrait(120, 160))
    for name, fmt, image, options in [
        ("png rgb", "PNG", face, {}), ("jpeg", "JPEG", face, {"quality": 90}),
        ("jpeg progressive", "JPEG", face, {"progressive": True}), ("webp lossy", "WEBP", face, {}),
        ("webp lossless", "WEBP", face, {"lossless": True}), ("heic", "HEIF", face, {"quality": 80}),
        ("png rgba", "PNG", face.convert("RGBA"), {}), ("png gray", "PNG", face.convert("L"), {}),
        ("png gray+alpha", "PNG", face.convert("LA"), {}), ("png 1-bit", "PNG", face.convert("1"), {}),
        ("png palette", "PNG", face.convert("P", palette=Image.Palette.ADAPTIVE), {}),
        ("png palette transparent", "PNG", face.convert("P", palette=Image.Palette.ADAPTIVE),
         {"transparency": 0}),
        ("png 16-bit gray", "PNG", Image.fromarray(np.asarray(face.convert("L")).astype(np.uint16) * 257), {}),
        ("jpeg cmyk", "JPEG", face.convert("CMYK"), {}), ("jpeg gray", "JPEG", face.convert("L"), {}),
    ]:
        members.append(Member(name, _save(image, fmt, **options), "ok", size=(120, 160)))
    members.append(Member("png 16-bit rgb", _rgb48_png(tmp), "ok", size=(120, 160)))
    frames = [Image.fromarray(portrait(120, 160)), Image.fromarray(portrait(120, 160)[::-1].copy())]
    members.append(Member("animated png", _save(frames[0], "PNG", save_all=True, append_images=frames[1:]), "ok",
                          size=(120, 160)))
    members.append(Member("animated webp", _save(frames[0], "WEBP", save_all=True, append_images=frames[1:]), "ok",
                          size=(120, 160)))
    members.append(Member("animated gif", _save(frames[0], "GIF", save_all=True, append_images=frames[1:]), "error",
                          status=415))
    for fmt in ("BMP", "TIFF"):
        members.append(Member(fmt.lower(), _save(face, fmt), "error", status=415))
    # EXIF orientations 1-8: stored turned, delivered upright.
    upright = portrait(120, 160)
    undo = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: np.rot90(a[:, ::-1], 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: np.rot90(a[:, ::-1], -1),
            8: lambda a: np.rot90(a, -1)}
    for orientation, stored in undo.items():
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = _save(Image.fromarray(np.ascontiguousarray(stored(upright))), "JPEG", exif=exif.tobytes(), quality=95)
        members.append(Member(f"exif orientation {orientation}", data, "ok", size=(120, 160)))
    # Sizes: tiny, at the edges of the limits, and far past them.
    members.append(Member("1x1", _save(Image.new("RGB", (1, 1)), "PNG"), "error", status=400,
                          mentions=["1x1", "at least 16"]))
    members.append(Member("16x16", _save(Image.new("RGB", (16, 16), "tan"), "PNG"), "ok", size=(16, 16)))
    edge = int(max_aspect)
    members.append(Member(f"100x{100 * edge} (aspect {edge})", _save(Image.new("L", (100, 100 * edge)), "PNG"), "ok",
                          size=(100, 100 * edge)))
    members.append(Member(f"100x{100 * edge + 1}", _save(Image.new("L", (100, 100 * edge + 1)), "PNG"), "error",
                          status=400, mentions=[f"the limit is {max_aspect:g}:1"]))
    for width, height in ((16, 100_000), (2_500_000, 16)):
        members.append(Member(f"png {width}x{height}", _save(Image.new("L", (width, height)), "PNG",
                                                             compress_level=9), "error", status=400,
                              mentions=[f"{width}x{height}", "aspect ratio"]))
    members.append(Member("png declaring 50000x50000", png_header(50000, 50000), "error", status=413,
                          mentions=["2500000000", str(max_pixels)]))
    members.append(Member("png declaring 1.25x the pixel limit", png_header(8000, max_pixels * 5 // 32000), "error",
                          status=413, mentions=[str(max_pixels)]))
    members.append(Member("jpeg declaring 65000x65000", jpeg_header(65000, 65000), "error", status=413,
                          mentions=[str(max_pixels)]))
    big = Image.fromarray(portrait(600, 400)).resize((6000, 4000))
    members.append(Member("jpeg 6000x4000", _save(big, "JPEG", quality=80), "ok", size=(6000, 4000)))
    members.append(Member("png 3000x2000", _save(big.resize((3000, 2000)), "PNG", compress_level=1), "ok",
                          size=(3000, 2000)))
    # Broken files.
    png, jpeg = members[0].data, members[1].data
    members += [Member("png cut in half", png[: len(png) // 2], "error", status=400),
                Member("jpeg first 200 bytes", jpeg[:200], "either"),
                Member("png header only", png[:33], "either"),
                Member("empty", b"", "error", status=400),
                Member("random bytes", np.random.default_rng(3).bytes(3000), "error", status=415),
                Member("text", b"not an image " * 20, "error", status=415)]
    return members


def _rgb48_png(tmp: Path) -> bytes:
    source, target = tmp / "rgb48.raw", tmp / "rgb48.png"
    source.write_bytes((portrait(120, 160).astype(">u2") * 257).tobytes())
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb48be", "-s", "120x160", "-i",
                    str(source), "-pix_fmt", "rgb48be", str(target)], check=True)
    return target.read_bytes()
