"""Video in and out with PyAV (FFmpeg): frames as RGB uint8 H×W×3, the audio copied, a metadata tag.

PyAV rather than OpenCV here because convert must keep the source's audio (OpenCV drops it) and
write H.264; photos stay with OpenCV and Pillow. :class:`VideoSource` decodes one file in order
(:func:`prefetch` runs it ahead in a thread);
:class:`VideoSink` encodes frames at the source's rate and size, copies its audio packets
(interleaved by time, transcoded only when the output container cannot hold the codec) and sets
the container's ``comment`` tag.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

# Audio codecs each container takes as they are (else the audio is transcoded to the second entry).
AUDIO_COPY = {
    ".mp4": ({"aac", "mp3", "alac", "ac3", "opus"}, "aac"),
    ".mov": ({"aac", "mp3", "alac", "ac3", "pcm_s16le"}, "aac"),
    ".avi": ({"mp3", "ac3", "aac", "pcm_s16le"}, "mp3"),
    ".webm": ({"opus", "vorbis"}, "libopus"),
}
VIDEO_CODEC = {".webm": "libvpx-vp9"}  # everything else: H.264
X264_OPTIONS = {"crf": "17", "preset": "veryfast"}  # visually lossless, fast (x264's own presets)


class VideoReadError(Exception):
    """A video that cannot be opened or decoded at all."""


@dataclass(frozen=True)
class VideoInfo:
    """What the output must keep: size, frame rate, frame count (from the header; 0 if unknown)."""

    width: int
    height: int
    fps: Fraction
    frames: int
    has_audio: bool
    frames_estimated: bool = False  # ``frames`` from the duration (the header had no count)


def probe(path: str | Path) -> VideoInfo:
    """Read a video's header. Raises :class:`VideoReadError` when it cannot be opened."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoReadError("no video stream")
            s = c.streams.video[0]
            fps = Fraction(s.average_rate or s.guessed_rate or Fraction(25))
            frames, estimated = int(s.frames or 0), False
            if frames == 0 and c.duration:  # Matroska and WebM headers give a duration, not a count
                frames, estimated = round(c.duration / 1e6 * fps), True
            return VideoInfo(s.codec_context.width, s.codec_context.height, fps, frames,
                             bool(c.streams.audio), estimated)
    except av.FFmpegError as exc:
        raise VideoReadError(f"not a readable video ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip()[:120] or type(exc).__name__


class VideoSource:
    """Decode a video's frames in order as (index, RGB uint8 H×W×3).

    After iterating, ``decoded`` is the number of frames decoded and ``error`` the decoder's
    complaint when it stopped early (a truncated or damaged file); frames before it are kept.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        self.decoded = 0
        self.error: str | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        try:
            with av.open(str(self.path)) as c:
                stream = c.streams.video[0]
                stream.thread_type = "AUTO"  # frame + slice threads in FFmpeg
                for frame in c.decode(stream):
                    rgb = frame.to_ndarray(format="rgb24")
                    self.decoded += 1
                    yield self.decoded - 1, rgb
        except av.FFmpegError as exc:
            self.error = _reason(exc)
        if self.decoded == 0:
            raise VideoReadError(f"no frame could be decoded ({self.error or 'empty video'})")

    @property
    def truncated(self) -> bool:
        slack = 1 if self.info.frames_estimated else 0  # a duration rounds to within a frame
        return self.error is not None or self.decoded < self.info.frames - slack


def prefetch(frames: Iterable[Any], ahead: int, timed: Callable[..., Any]) -> Iterator[Any]:
    """Iterate ``frames`` in a thread, ``ahead`` items ahead (PyAV decodes without the GIL); each
    step runs as ``timed("decode", next, ...)`` (a summary's stage timer); an error is raised here, in order."""
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    end = object()

    def work() -> None:
        it = iter(frames)
        try:
            while not stop.is_set():
                item = timed("decode", next, it, end)
                q.put(item)
                if item is end:
                    return
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=work, daemon=True, name="convert-decode")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class VideoSink:
    """Encode RGB frames to ``path`` at ``info``'s size and rate, copying ``audio_from``'s audio.

    ``path``'s suffix picks the container (a temporary name keeps the final suffix). ``comment``
    goes into the container's ``comment`` metadata tag. Use as a context manager; :meth:`close`
    flushes the encoder and writes the remaining audio.
    """

    def __init__(self, path: str | Path, info: VideoInfo, comment: str, audio_from: str | Path | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        fmt = {".mkv": "matroska", ".mov": "mov", ".mp4": "mp4", ".avi": "avi", ".webm": "webm"}.get(suffix)
        self.out = av.open(str(self.path), "w", format=fmt)
        self.out.metadata["comment"] = comment
        self.video = self._video_stream(info, suffix)
        self.frames = 0
        self._audio_in: Any = None
        self._audio_packets: Iterator[Any] | None = None
        self._audio_out: Any = None
        self._transcode = False
        self._pending: Any = None
        if audio_from is not None and info.has_audio:
            self._open_audio(audio_from, suffix)

    def _video_stream(self, info: VideoInfo, suffix: str) -> Any:
        codec = VIDEO_CODEC.get(suffix, "libx264")
        stream = self.out.add_stream(codec, rate=info.fps)
        stream.width, stream.height = info.width, info.height
        even = info.width % 2 == 0 and info.height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 needs even sides
        if codec == "libx264":
            stream.options = dict(X264_OPTIONS)
        return stream

    def _open_audio(self, source: str | Path, suffix: str) -> None:
        self._audio_in = av.open(str(source))
        ain = self._audio_in.streams.audio[0]
        copyable, fallback = AUDIO_COPY.get(suffix, (None, "aac"))
        if copyable is None or ain.codec_context.name in copyable:
            self._audio_out = self.out.add_stream_from_template(ain)
        else:  # e.g. PCM into MP4: the container cannot hold it, so encode it
            log.info("%s: audio %s transcoded to %s for %s", source, ain.codec_context.name, fallback, suffix)
            self._audio_out = self.out.add_stream(fallback, rate=ain.codec_context.sample_rate)
            self._transcode = True
        self._audio_packets = self._audio_in.demux(ain)

    def write(self, rgb: np.ndarray) -> None:
        """Encode one RGB uint8 H×W×3 frame (frame ``n`` is shown at n / fps)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / Fraction(self.video.average_rate)
        self.frames += 1
        for packet in self.video.encode(frame):
            self.out.mux(packet)
        self._mux_audio_until(float(self.frames / Fraction(self.video.average_rate)))

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Mux the source's audio up to ``seconds`` (None: all of it), interleaved with the video."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._pending if self._pending is not None else next(self._audio_packets, None)
            self._pending = None
            if packet is None:
                self._audio_packets = None
                return
            if packet.dts is None and packet.size == 0:  # the demuxer's final flush packet
                continue
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            if self._transcode:
                for audio_frame in packet.decode():
                    audio_frame.pts = None
                    for p in self._audio_out.encode(audio_frame):
                        self.out.mux(p)
            else:
                packet.stream = self._audio_out
                self.out.mux(packet)

    def close(self) -> None:
        try:
            for packet in self.video.encode():
                self.out.mux(packet)
            self._mux_audio_until(None)
            if self._transcode:
                for packet in self._audio_out.encode():
                    self.out.mux(packet)
        finally:
            self.out.close()
            if self._audio_in is not None:
                self._audio_in.close()

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_comment(path: str | Path) -> str | None:
    """The container's ``comment`` tag (None when absent)."""
    with av.open(str(path)) as c:
        return c.metadata.get("comment")
