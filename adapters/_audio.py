"""Audio in the trace (``include_audio=True``): what was said, as it was heard.

Only a session that records audio has an :class:`AudioRecorder`; without one nothing here
runs and no byte of audio is kept. The recorder keeps, per session:

* the audio of each response the model speaks (its audio deltas, by response id), until
  the response's speech span takes it when it ends;
* the caller's audio as the application sends it (``send_audio``), in one buffer that is
  cut into utterances: by the server's ``audio_start_ms`` / ``audio_end_ms`` (the OpenAI
  transport's ``input_audio_buffer.speech_started`` / ``speech_stopped``), or else at each
  commit (the audio sent since the previous one); each utterance waits, by conversation
  item id, until its transcription span takes it when it ends.

Everything is bounded: a clip holds at most ``max_audio_seconds`` of audio (past that it
is cut and says ``truncated``); while no utterance is under way the caller's buffer keeps
only the last ``max_audio_seconds``; at most :data:`CLIPS_HELD` clips of each side wait for
a span (a clip no span takes, e.g. with no transcription at all, is dropped oldest first).
So a session holds at most ``(1 + 2 * CLIPS_HELD) * max_audio_seconds`` of audio, whatever
its length; a span's audio is released here when the span ends (the span itself holds
the raw bytes until the processors have exported it; base64 is made at export, which the
SDK's batch processor does in its own thread, not on the event loop).

Formats, as the SDK's voice pipeline writes them on its spans: ``"pcm"`` (PCM16 mono at
24 kHz, little-endian), ``"g711_ulaw"`` and ``"g711_alaw"`` (8 kHz, one byte a sample).
"""

from __future__ import annotations

import base64
import struct
from collections import OrderedDict, deque
from typing import Final

import attrs

#: Clips of each side (caller, agent) waiting for their span at most; older ones drop.
CLIPS_HELD: Final = 4
#: Conversation item ids remembered, so a repeated notice of an item takes no new audio.
_ITEMS_REMEMBERED: Final = 256

PCM: Final = "pcm"
G711_ULAW: Final = "g711_ulaw"
G711_ALAW: Final = "g711_alaw"

#: Session format names (both API generations) -> the name a span carries.
_SPAN_FORMAT: Final = {
    "pcm16": PCM,
    "audio/pcm": PCM,
    "pcm": PCM,
    "g711_ulaw": G711_ULAW,
    "audio/pcmu": G711_ULAW,
    "g711_alaw": G711_ALAW,
    "audio/pcma": G711_ALAW,
}

#: Span format -> (WAV format tag, sample rate, bytes per sample).
_WAV: Final = {PCM: (1, 24_000, 2), G711_ULAW: (7, 8_000, 1), G711_ALAW: (6, 8_000, 1)}


def span_format(session_format: str | None) -> str:
    """The format name a span carries for a session's audio format (default: PCM16).

    Example:
        >>> span_format("pcm16"), span_format("audio/pcmu"), span_format(None)
        ('pcm', 'g711_ulaw', 'pcm')
    """
    return _SPAN_FORMAT.get(session_format or "", PCM)


def format_name(session_format: str) -> str:
    """The name a span carries for a session's audio format; a name it does not know is
    kept as the session gave it.

    Example:
        >>> format_name("pcm16"), format_name("audio/pcma"), format_name("opus")
        ('pcm', 'g711_alaw', 'opus')
    """
    return _SPAN_FORMAT.get(session_format, session_format)


def bytes_per_ms(fmt: str) -> int:
    """Bytes per millisecond of audio in a span format.

    Example:
        >>> bytes_per_ms("pcm"), bytes_per_ms("g711_alaw")
        (48, 8)
    """
    _, rate, width = _WAV.get(fmt, _WAV[PCM])
    return rate * width // 1000


def wav_bytes(audio: bytes, fmt: str = PCM) -> bytes:
    """``audio`` (raw, in span format ``fmt``) as a WAV file with the right header: PCM16
    24 kHz mono, or G.711 u-law / A-law 8 kHz mono (WAV format tags 7 and 6, with the
    ``fact`` chunk non-PCM WAV files carry).

    Example:
        >>> wav = wav_bytes(b"\\x00\\x00" * 24, "pcm")
        >>> wav[:4], wav[8:12], len(wav) - 44
        (b'RIFF', b'WAVE', 48)
        >>> wav_bytes(b"\\xff" * 8, "g711_ulaw")[20:22]  # format tag 7: u-law
        b'\\x07\\x00'
    """
    tag, rate, width = _WAV.get(fmt, _WAV[PCM])
    channels = 1
    if tag == 1:
        fmt_chunk = struct.pack(
            "<4sIHHIIHH", b"fmt ", 16, tag, channels, rate, rate * width, width, 8 * width
        )
        extra = b""
    else:
        fmt_chunk = struct.pack(
            "<4sIHHIIHHH", b"fmt ", 18, tag, channels, rate, rate * width, width, 8 * width, 0
        )
        extra = struct.pack("<4sII", b"fact", 4, len(audio) // width)
    pad = b"\x00" if len(audio) % 2 else b""
    data = struct.pack("<4sI", b"data", len(audio)) + audio + pad
    body = b"WAVE" + fmt_chunk + extra + data
    return struct.pack("<4sI", b"RIFF", len(body)) + body


def wav_data_uri(audio: bytes, fmt: str = PCM) -> str:
    """``audio`` as a ``data:audio/wav;base64,...`` URI, for a browser's audio player.

    Example:
        >>> wav_data_uri(b"", "pcm")[:22]
        'data:audio/wav;base64,'
    """
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio, fmt)).decode("ascii")


@attrs.frozen
class Clip:
    """Recorded audio for one span: raw bytes in span format ``format``, as the pieces it
    arrived in. Joining them waits until a processor exports the span (:attr:`audio`), so
    ending a span costs the event loop no copy of its audio.

    Example:
        >>> clip = Clip((b"\\x00\\x00" * 24, b"\\x00\\x00" * 24), "pcm", truncated=False)
        >>> clip.seconds, len(clip.audio)
        (0.002, 96)
    """

    chunks: tuple[bytes, ...]
    format: str
    truncated: bool

    @property
    def size(self) -> int:
        """How many bytes of audio the clip holds."""
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def audio(self) -> bytes:
        """The audio, in one piece."""
        chunks = self.chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def seconds(self) -> float:
        """How long the audio lasts."""
        return self.size / bytes_per_ms(self.format) / 1000.0


class _Growing:
    """A response's audio as it arrives, capped at ``limit`` bytes."""

    __slots__ = ("chunks", "format", "limit", "size", "truncated")

    def __init__(self, fmt: str, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.format = fmt
        self.limit = limit
        self.size = 0
        self.truncated = False

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(0, room)]
            if not data:
                return
        self.chunks.append(data)
        self.size += len(data)

    def clip(self) -> Clip:
        return Clip(tuple(self.chunks), self.format, self.truncated)


class AudioRecorder:
    """The audio of one session, kept only until each span takes its own (see the module).

    Example:
        >>> recorder = AudioRecorder(max_audio_seconds=1.0)
        >>> recorder.agent_audio("resp_1", b"\\x01\\x00" * 24)
        >>> recorder.take("agent", "resp_1").audio[:4]
        b'\\x01\\x00\\x01\\x00'
        >>> recorder.caller_audio(b"\\x02\\x00" * 48, commit=True)
        >>> recorder.committed("item_1")
        >>> recorder.take("caller", "item_1").seconds
        0.002
    """

    __slots__ = (
        "_base",
        "_buffer",
        "_callers",
        "_capped",
        "_items",
        "_responses",
        "_sealed",
        "_start",
        "_total",
        "_trimmed",
        "input_format",
        "max_seconds",
        "output_format",
    )

    def __init__(self, max_audio_seconds: float) -> None:
        self.max_seconds = max_audio_seconds
        self.input_format = PCM
        self.output_format = PCM
        self._responses: OrderedDict[object, _Growing] = OrderedDict()
        self._callers: OrderedDict[str, Clip] = OrderedDict()
        self._items: OrderedDict[str, None] = OrderedDict()  # item ids given audio already
        self._sealed: deque[Clip] = deque(maxlen=CLIPS_HELD)  # committed, no item id yet
        self._buffer = bytearray()  # the caller's audio not yet given to an utterance
        self._base = 0  # offset (bytes since the session began) of the buffer's first byte
        self._total = 0  # the caller's audio sent so far, in bytes
        self._start: int | None = None  # where the utterance under way started (offset)
        self._capped = False  # the utterance under way outgrew max_audio_seconds
        self._trimmed = False  # audio since the last commit was dropped to stay in bounds

    def limit(self, fmt: str) -> int:
        """The most bytes a clip in format ``fmt`` holds (whole samples)."""
        width = _WAV.get(fmt, _WAV[PCM])[2]
        return int(self.max_seconds * 1000 * bytes_per_ms(fmt)) // width * width

    def held_bytes(self) -> int:
        """How many bytes of audio the recorder holds now."""
        growing = sum(response.size for response in self._responses.values())
        clips = sum(clip.size for clip in (*self._callers.values(), *self._sealed))
        return len(self._buffer) + growing + clips

    def set_formats(self, input_format: str | None, output_format: str | None) -> None:
        """The session's audio formats (session names), as sent for the active agent."""
        self.input_format = span_format(input_format)
        self.output_format = span_format(output_format)

    # -- the agent's side ---------------------------------------------------------------

    def agent_audio(self, response_id: object, data: bytes) -> None:
        """An audio delta of a response."""
        growing = self._responses.get(response_id)
        if growing is None:
            fmt = self.output_format
            growing = self._responses[response_id] = _Growing(fmt, self.limit(fmt))
            while len(self._responses) > CLIPS_HELD:
                self._responses.popitem(last=False)
        size = growing.size + len(data)
        if size <= growing.limit:  # nearly always: one append, no call
            growing.chunks.append(data)
            growing.size = size
        else:
            growing.add(data)

    # -- the caller's side ----------------------------------------------------------------

    def caller_audio(self, data: bytes, commit: bool) -> None:
        """Audio the application sent (``send_audio``); ``commit`` ends the utterance."""
        buffer = self._buffer
        self._total += len(data)
        start = self._start
        if start is not None:  # an utterance is under way: keep from its start, capped
            room = start + self.limit(self.input_format) - (self._base + len(buffer))
            if self._capped or len(data) > room:
                self._capped = True
                data = data[: max(0, room)]
            buffer += data
        else:
            buffer += data
            excess = len(buffer) - self.limit(self.input_format)
            if excess > 0:
                del buffer[:excess]  # bytearray drops a prefix without copying the rest
                self._trimmed = True
            self._base = self._total - len(buffer)
        if commit:
            self._sealed.append(Clip((bytes(buffer),), self.input_format, self._trimmed))
            self._restart()

    def _restart(self) -> None:
        self._buffer.clear()
        self._base = self._total
        self._start = None
        self._capped = self._trimmed = False

    def _offset(self, ms: object) -> int | None:
        if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
            return None
        width = _WAV[self.input_format][2]
        return int(ms * bytes_per_ms(self.input_format)) // width * width

    def speech_started(self, item_id: str, audio_start_ms: object) -> None:
        """The server heard the caller start speaking at ``audio_start_ms``."""
        start = self._offset(audio_start_ms)
        if start is None or item_id in self._items:
            return
        lost = start < self._base  # its first audio fell out of the window already
        start = min(max(start, self._base), self._total)
        del self._buffer[: start - self._base]
        self._trimmed = lost
        self._base = start
        self._start = start

    def speech_stopped(self, item_id: str, audio_end_ms: object) -> None:
        """The server heard the caller stop at ``audio_end_ms``: that utterance is cut."""
        end = self._offset(audio_end_ms)
        if end is None or item_id in self._items:
            return
        start = self._start if self._start is not None else self._base
        limit = self.limit(self.input_format)
        stop = min(end, start + limit)
        audio = bytes(self._buffer[max(0, start - self._base) : max(0, stop - self._base)])
        truncated = self._capped or self._trimmed or end - start > limit
        self._keep(item_id, Clip((audio,), self.input_format, truncated))
        if self._capped:
            self._restart()
        else:
            cut = min(max(0, end - self._base), len(self._buffer))
            del self._buffer[:cut]
            self._base += cut
            self._start = None
            self._trimmed = False

    def committed(self, item_id: str) -> None:
        """The caller's audio became conversation item ``item_id`` (a commit, or the item
        appearing): without a cut by the server, it is the audio sent since the previous
        utterance."""
        if item_id in self._items:
            return
        if self._sealed:
            self._keep(item_id, self._sealed.popleft())
        elif self._start is None and self._buffer:
            self._keep(item_id, Clip((bytes(self._buffer),), self.input_format, self._trimmed))
            self._restart()

    def _keep(self, item_id: str, clip: Clip) -> None:
        self._items[item_id] = None
        while len(self._items) > _ITEMS_REMEMBERED:
            self._items.popitem(last=False)
        self._callers[item_id] = clip
        while len(self._callers) > CLIPS_HELD:
            self._callers.popitem(last=False)

    # -- spans take their audio -----------------------------------------------------------

    def take(self, source: str, key: object) -> Clip | None:
        """The audio of a caller item (``source="caller"``) or of a response
        (``"agent"``), handed over once and released here."""
        if source == "caller":
            return self._callers.pop(key, None) if isinstance(key, str) else None
        growing = self._responses.pop(key, None)
        return growing.clip() if growing is not None else None

    def clear(self) -> None:
        """Release everything (the session closed, or tracing stopped)."""
        self._responses.clear()
        self._callers.clear()
        self._sealed.clear()
        self._items.clear()
        self._restart()
