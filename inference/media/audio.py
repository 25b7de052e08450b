"""Audio in: any file PyAV decodes -> float32 16 kHz mono, and streamed PCM16 -> the same.

Decoding normalises inside libavfilter, before anything becomes a NumPy array: every decoded
frame goes through `pan` (the plain average of all channels, whatever their layout or number),
`aresample` to 16 kHz and `aformat` to packed float mono, so Python only ever sees one packed
plane. PyAV's planar views are never touched: for a planar frame of 8 or more channels PyAV
reports one plane too many and `to_ndarray()` reads past the end of the frame (a segfault on an
8-channel FLAC), and swresample's own downmix to mono refuses layouts of unknown order (9+
channels) and drives a 7.1 mix 32 % past full scale. The limits (bytes, seconds, channels, rate)
are checked on every frame while decoding, so a long or lying file stops at the limit.
"""

from __future__ import annotations

import errno
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.config import MAX_AUDIO_CHANNELS
from inference.errors import BadInput, TooLarge, UnsupportedMedia

TARGET_RATE = 16000
MAX_SOURCE_RATE = 384_000  # Hz: the highest rate of real audio files (DXD)
MAX_BAD_PACKETS = 64  # corrupt packets skipped (as ffmpeg does) before the file is refused
AUDIO_FORMATS = "wav, mp3, flac, ogg (vorbis/opus), m4a (aac/alac)"
REMEDY = f"upload {AUDIO_FORMATS}; ffmpeg -i INPUT -ac 1 -ar 16000 out.wav converts anything"


@dataclass(frozen=True)
class AudioLimits:
    """What one decoded upload may cost (FLASHHEAD_MAX_AUDIO_* settings)."""

    max_bytes: int
    max_seconds: float
    max_channels: int = MAX_AUDIO_CHANNELS


def decode_audio(data: bytes, limits: AudioLimits) -> np.ndarray:
    """Decode an audio file (any rate, layout, sample format) to float32 16 kHz mono in [-1, 1].

    Raises BadInput / TooLarge / UnsupportedMedia naming the limit and the value that broke it.
    """
    import av

    if not data:
        raise BadInput("the audio is empty", REMEDY)
    if len(data) > limits.max_bytes:
        raise TooLarge(f"the audio is {len(data)} bytes; the limit is {limits.max_bytes} (FLASHHEAD_MAX_AUDIO_BYTES)",
                       "send a shorter clip or stream it over WS /v1/stream")
    decoder = _Decoder(limits)
    try:
        with av.open(io.BytesIO(data), mode="r", **_open_options()) as container:
            if not container.streams.audio:
                raise UnsupportedMedia("the file has no audio stream", REMEDY)
            stream = container.streams.audio[0]
            _check_declared(stream, limits)
            decoder.run(container, stream)
    except av.error.MemoryError:
        raise TooLarge("decoding the audio ran out of memory", "send a shorter or simpler clip") from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        if not decoder.source_seconds:
            raise UnsupportedMedia(f"not a readable audio file: {_reason(error)}", REMEDY) from None
        decoder.finish()  # a file corrupt past its start: keep what decoded, as ffmpeg does
    samples = decoder.samples()
    if samples.size == 0:
        raise BadInput(f"the audio lasts {decoder.source_seconds * 1000:.4g} ms, less than one sample at 16 kHz: "
                       f"the minimum is {1000 / TARGET_RATE} ms, or no video frame can be made",
                       "send at least one video frame of audio (40 ms)")
    return samples


def _open_options() -> dict[str, Any]:
    """av.open() keywords for this PyAV: before 19 it fails on metadata that is not UTF-8 unless told to
    ignore it; 19 removed the keyword (and decodes such metadata with surrogate escapes)."""
    import av

    return {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}


def _check_declared(stream: Any, limits: AudioLimits) -> None:
    channels = stream.codec_context.channels
    if channels > limits.max_channels:
        raise TooLarge(f"the audio has {channels} channels; the limit is {limits.max_channels} "
                       "(FLASHHEAD_MAX_AUDIO_CHANNELS)",
                       "mix it down to mono or stereo first (ffmpeg -ac 1)")


def _reason(error: BaseException) -> str:
    text = str(error).split(": '")[0]
    return text[:200] or type(error).__name__


class _Decoder:
    """Decode packet by packet, check limits per frame, mix each run of same-shaped frames to 16 kHz mono."""

    def __init__(self, limits: AudioLimits):
        self.limits = limits
        self.output = bytearray()
        self.expected = 0  # 16 kHz samples the decoded source accounts for
        self.source_seconds = 0.0
        self.mixer: _MonoMixer | None = None
        self.bad_packets = 0

    def run(self, container: Any, stream: Any) -> None:
        import av

        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                self.bad_packets += 1
                if self.bad_packets > MAX_BAD_PACKETS:
                    raise
                continue
            for frame in frames:
                self.add(frame)
        self.finish()

    def add(self, frame: Any) -> None:
        self.check(frame)
        if self.mixer is None or self.mixer.shape != _shape(frame):
            self.finish()
            self.mixer = _MonoMixer(frame)
        self.source_seconds += frame.samples / frame.sample_rate
        self.expected += self.mixer.expect(frame.samples)
        if self.source_seconds > self.limits.max_seconds:
            raise TooLarge(f"the audio is longer than {self.limits.max_seconds:g} s (FLASHHEAD_MAX_AUDIO_SECONDS)",
                           "split it into shorter clips or stream it over WS /v1/stream")
        self.output += self.mixer.push(frame)

    def check(self, frame: Any) -> None:
        channels, rate = len(frame.layout.channels), frame.sample_rate
        if channels > self.limits.max_channels:
            raise TooLarge(f"the audio has {channels} channels; the limit is {self.limits.max_channels} "
                           "(FLASHHEAD_MAX_AUDIO_CHANNELS)",
                           "mix it down to mono or stereo first (ffmpeg -ac 1)")
        if not 1 <= rate <= MAX_SOURCE_RATE:
            raise BadInput(f"the audio's sample rate is {rate} Hz; the server decodes 1 to {MAX_SOURCE_RATE} Hz",
                           "resample it (ffmpeg -ar 48000) or fix the file's header")

    def finish(self) -> None:
        if self.mixer is not None:
            self.output += self.mixer.flush()
            self.mixer = None

    def samples(self) -> np.ndarray:
        """Exactly round(source samples x 16000 / rate) samples, clipped to [-1, 1]."""
        samples = np.frombuffer(bytes(self.output), dtype=np.float32)[: self.expected]
        if samples.size < self.expected:
            samples = np.concatenate([samples, np.zeros(self.expected - samples.size, np.float32)])
        return np.nan_to_num(samples).clip(-1.0, 1.0)


def _shape(frame: Any) -> tuple[str, str, int]:
    return frame.format.name, frame.layout.name, frame.sample_rate


class _MonoMixer:
    """libavfilter graph: abuffer -> pan (average of all channels) -> aresample 16 kHz -> aformat flt mono."""

    def __init__(self, frame: Any):
        import av.filter

        self.shape = _shape(frame)
        self.rate = frame.sample_rate
        self.source_samples = 0
        self.emitted = 0
        channels = len(frame.layout.channels)
        graph = av.filter.Graph()
        source = graph.add("abuffer", sample_rate=str(frame.sample_rate), sample_fmt=frame.format.name,
                           channel_layout=frame.layout.name, time_base=f"1/{frame.sample_rate}")
        mix = graph.add("pan", "mono|c0<" + "+".join(f"c{index}" for index in range(channels)))
        resample = graph.add("aresample", str(TARGET_RATE))
        packed = graph.add("aformat", sample_fmts="flt", channel_layouts="mono", sample_rates=str(TARGET_RATE))
        sink = graph.add("abuffersink")
        source.link_to(mix)
        mix.link_to(resample)
        resample.link_to(packed)
        packed.link_to(sink)
        graph.configure()
        self.graph = graph

    def expect(self, samples: int) -> int:
        """16 kHz samples that `samples` more source samples add (rounded on the running total)."""
        before = round(self.source_samples * TARGET_RATE / self.rate)
        self.source_samples += samples
        return round(self.source_samples * TARGET_RATE / self.rate) - before

    def push(self, frame: Any) -> bytes:
        frame.pts = None  # a lying timestamp must not make the resampler pad or drop audio
        self.graph.push(frame)
        return self._pull()

    def flush(self) -> bytes:
        self.graph.push(None)
        return self._pull()

    def _pull(self) -> bytes:
        import av

        out = bytearray()
        while True:
            try:
                frame = self.graph.pull()
            except EOFError:
                break
            except av.error.FFmpegError as error:
                if error.errno != errno.EAGAIN:
                    raise
                break
            out += frame.to_ndarray().astype(np.float32, copy=False).tobytes()  # one packed plane
        return bytes(out)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample float32 mono to 16 kHz with soxr (high quality)."""
    if rate == TARGET_RATE:
        return samples.astype(np.float32, copy=False)
    import soxr

    # Band-limiting can overshoot full scale by a little: the backends expect [-1, 1].
    return np.clip(np.asarray(soxr.resample(samples, rate, TARGET_RATE, quality="HQ"), dtype=np.float32), -1, 1)


class PcmResampler:
    """Streaming PCM16 (interleaved, any rate/channels) -> float32 16 kHz mono, chunk by chunk."""

    def __init__(self, rate: int, channels: int):
        import soxr

        self.channels = channels
        self.rate = rate
        self.leftover = b""
        self.stream = None
        if rate != TARGET_RATE:
            self.stream = soxr.ResampleStream(rate, TARGET_RATE, 1, dtype="float32")
        self.samples_in = 0

    def push(self, pcm: bytes, last: bool = False) -> np.ndarray:
        """Resample the next bytes (any length; a partial sample is kept for the next call)."""
        data = self.leftover + pcm
        frame_bytes = 2 * self.channels
        usable = len(data) // frame_bytes * frame_bytes
        self.leftover = data[usable:]
        ints = np.frombuffer(data[:usable], dtype="<i2").reshape(-1, self.channels)
        mono = (ints.astype(np.float32).mean(axis=1) / 32768.0).astype(np.float32)
        self.samples_in += len(mono)
        if self.stream is None:
            return mono
        return np.clip(np.asarray(self.stream.resample_chunk(mono, last=last), dtype=np.float32), -1, 1)

    def expected_output(self) -> int:
        """16 kHz samples that the input so far corresponds to (ceil)."""
        return math.ceil(self.samples_in * TARGET_RATE / self.rate)
