"""Media in and out. Decoders of untrusted input (`audio`, `image`) run in the worker processes of
`pool`; `output` encodes what the server sends (JPEG frames, MP4 files).

Every decoder turns a failure into BadInput / UnsupportedMedia / TooLarge with a message that
names the limit and the value; nothing here trusts the input's own claims about its size.
"""

from __future__ import annotations

from inference.media.audio import TARGET_RATE, AudioLimits, PcmResampler, decode_audio, resample
from inference.media.image import DecodedImage, ImageLimits, decode_image
from inference.media.output import JpegThreads, Mp4Writer, default_jpeg_threads, encode_jpeg

__all__ = ["TARGET_RATE", "AudioLimits", "DecodedImage", "ImageLimits", "JpegThreads", "Mp4Writer", "PcmResampler",
           "decode_audio", "decode_image", "default_jpeg_threads", "encode_jpeg", "resample"]
