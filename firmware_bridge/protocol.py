"""The ecg12 framed protocol (see SPEC.md): encoder and incremental, self-resynchronising decoder.

Frame layout (little-endian)::

    0  sync        0xEC 0x12
    2  version     1
    3  flags       bits 0-1 sample format (0 int16, 1 int24); bits 2-7 reserved, 0
    4  stream_id   u8
    5  status      u8 (Status bits)
    6  seq         u16, +1 per frame, wraps 65535 -> 0
    8  fs_hz       u16, > 0
    10 timestamp   u32 µs of the first sample (device clock, wraps)
    14 n_samples   u8, 1..255
    15 payload     n_samples x (2 | 3) bytes, signed, 1 LSB = 1 µV
    .. crc32       u32, CRC-32 (zlib/IEEE 802.3) of bytes 0 .. end of payload
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.errors import FrameEncodeError

SYNC = b"\xec\x12"
VERSION = 1
HEADER = struct.Struct("<2sBBBBHHIB")
HEADER_LEN = HEADER.size  # 15
CRC_LEN = 4
MAX_SAMPLES = 255
SEQ_MOD = 1 << 16
RECENT_FRAMES = 1024  # replay window of the decoder, in frames
#: GATT profile of the ecg12 protocol over BLE (SPEC.md; the ESP32 sketch advertises these)
GATT_SERVICE_UUID = "ec120000-5a1e-4c0d-9f6e-6ec9d2a4b001"
GATT_FRAME_UUID = "ec120001-5a1e-4c0d-9f6e-6ec9d2a4b001"
_FLAG_RESERVED = 0xFC


class SampleFormat(enum.IntEnum):
    """Payload sample encoding; both are signed little-endian with 1 LSB = 1 µV."""

    INT16 = 0
    INT24 = 1

    @property
    def width(self) -> int:
        return 2 if self is SampleFormat.INT16 else 3

    @property
    def limits(self) -> tuple[int, int]:
        bits = 8 * self.width
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class Status(enum.IntFlag):
    """Status bits of a frame (bits 4-7 reserved: sent as 0, ignored by the decoder)."""

    LEAD_OFF = 0x01  # an electrode is off (AD8232 LO+ or LO-) during the frame
    SATURATION = 0x02  # at least one sample hit the ADC rail or was clipped to the format
    BATTERY_LOW = 0x04  # the device battery is below its low threshold
    CLOCK_UNSYNCED = 0x08  # the device clock has not been synchronised since boot


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded ecg12 frame. `lost_before` = frames missing just before it (by seq)."""

    seq: int
    stream_id: int
    fs_hz: int
    timestamp_us: int
    status: Status
    sample_format: SampleFormat
    samples_uv: np.ndarray = field(repr=False)
    lost_before: int = 0
    restart: bool = False  # the device restarted its numbering with this frame

    @property
    def lead_off(self) -> bool:
        return bool(self.status & Status.LEAD_OFF)

    @property
    def saturated(self) -> bool:
        return bool(self.status & Status.SATURATION)

    @property
    def battery_low(self) -> bool:
        return bool(self.status & Status.BATTERY_LOW)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (
            (self.seq, self.stream_id, self.fs_hz, self.timestamp_us, self.status,
             self.sample_format)
            == (other.seq, other.stream_id, other.fs_hz, other.timestamp_us, other.status,
                other.sample_format)
            and np.array_equal(self.samples_uv, other.samples_uv)
        )

    __hash__ = None  # type: ignore[assignment]


def _check_range(name: str, value: int, lo: int, hi: int) -> int:
    if not isinstance(value, int | np.integer) or not lo <= int(value) <= hi:
        raise FrameEncodeError(f"ecg12 frame field {name}={value!r} is outside {lo}..{hi}")
    return int(value)


def encode_frame(
    samples_uv: np.ndarray | list[int],
    *,
    seq: int,
    fs_hz: int,
    timestamp_us: int,
    stream_id: int = 0,
    status: int = 0,
    sample_format: SampleFormat = SampleFormat.INT16,
) -> bytes:
    """Build one frame. Samples beyond the format's range are clipped and SATURATION is set
    (as the C encoder does); `timestamp_us` is taken modulo 2**32."""
    fmt = SampleFormat(sample_format)
    _check_range("seq", seq, 0, SEQ_MOD - 1)
    _check_range("fs_hz", fs_hz, 1, 0xFFFF)
    _check_range("stream_id", stream_id, 0, 0xFF)
    _check_range("status", int(status), 0, 0xFF)
    if not isinstance(timestamp_us, int | np.integer) or timestamp_us < 0:
        raise FrameEncodeError(f"ecg12 frame field timestamp_us={timestamp_us!r} must be >= 0")
    arr = np.asarray(samples_uv)
    if arr.ndim != 1 or not 1 <= arr.size <= MAX_SAMPLES:
        raise FrameEncodeError(
            f"ecg12 frame field samples_uv has shape {arr.shape}; need 1..{MAX_SAMPLES} samples"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)):
            raise FrameEncodeError("ecg12 frame field samples_uv contains NaN or inf")
        arr = np.rint(arr)
    lo, hi = fmt.limits
    wide = arr.astype(np.int64)
    if wide.min() < lo or wide.max() > hi:
        status = int(status) | Status.SATURATION
        wide = np.clip(wide, lo, hi)
    header = HEADER.pack(SYNC, VERSION, int(fmt), stream_id, int(status), seq, fs_hz,
                         int(timestamp_us) & 0xFFFFFFFF, arr.size)
    le = wide.astype("<i4").tobytes()
    body = header + _pack_samples(le, fmt.width)
    return body + struct.pack("<I", zlib.crc32(body))


def _pack_samples(le_int32: bytes, width: int) -> bytes:
    """Keep the low `width` bytes of each little-endian int32."""
    a = np.frombuffer(le_int32, dtype=np.uint8).reshape(-1, 4)
    return a[:, :width].tobytes()


def _unpack_samples(payload: bytes | bytearray, width: int) -> np.ndarray:
    a = np.frombuffer(bytes(payload), dtype=np.uint8).reshape(-1, width)
    out = np.zeros((a.shape[0], 4), dtype=np.uint8)
    out[:, :width] = a
    out[:, width:] = np.where(a[:, width - 1:width] & 0x80, 0xFF, 0x00)
    return out.view("<i4").reshape(-1).astype(np.int32)


class FrameEncoder:
    """Stateful encoder for one stream: numbers frames with a wrapping sequence counter."""

    def __init__(self, fs_hz: int, stream_id: int = 0,
                 sample_format: SampleFormat = SampleFormat.INT16, first_seq: int = 0) -> None:
        self.fs_hz = _check_range("fs_hz", fs_hz, 1, 0xFFFF)
        self.stream_id = _check_range("stream_id", stream_id, 0, 0xFF)
        self.sample_format = SampleFormat(sample_format)
        self.seq = _check_range("first_seq", first_seq, 0, SEQ_MOD - 1)

    def encode(self, samples_uv: np.ndarray, timestamp_us: int, status: int = 0) -> bytes:
        """Encode the next frame and advance the sequence number."""
        frame = encode_frame(samples_uv, seq=self.seq, fs_hz=self.fs_hz,
                             timestamp_us=timestamp_us, stream_id=self.stream_id,
                             status=status, sample_format=self.sample_format)
        self.seq = (self.seq + 1) % SEQ_MOD
        return frame


@dataclass
class DecoderStats:
    """Counters of a FrameDecoder (all cumulative)."""

    frames: int = 0
    crc_failures: int = 0
    bad_headers: int = 0
    resyncs: int = 0
    bytes_discarded: int = 0
    lost_frames: int = 0
    duplicates: int = 0
    seq_resets: int = 0
    implausible: int = 0  # valid frames out of sequence, never confirmed by the next one


class FrameDecoder:
    """Incremental ecg12 decoder: feed bytes split anywhere, get complete valid frames.

    A candidate frame is accepted only if its header is valid and its CRC-32 matches; on any
    failure one byte is dropped and the search for the sync word resumes, so a real frame
    that starts inside garbage or inside a damaged frame is still found. `resyncs` counts
    the times the decoder lost sync (had to discard bytes), `lost_frames` the frames missing
    by sequence number (per stream, modulo 2**16). A frame whose number and time stamp were
    delivered among the last RECENT_FRAMES is a replay: dropped, counted in `duplicates`.
    Any other frame out of sequence (a number delivered recently with another time stamp, a
    backward jump, or a jump forward by RECENT_FRAMES or more while the time stamp goes back)
    is held: if the next frame of the stream continues it (number + 1, time stamp forward by
    about one frame) and not the frame delivered before it, the device restarted
    (`seq_resets`; both delivered, the first with `restart`); if not, it was a stale or
    damaged frame (dropped, counted in `duplicates` when its number was delivered recently,
    else in `implausible`).
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buf = bytearray()
        self._hunting = False
        self._shared = False  # _buf[0] is the last byte of the frame before (see _scan)
        self._last_seq: dict[int, int] = {}
        self._last_ts: dict[int, int] = {}
        self._recent: dict[int, collections.OrderedDict[int, int]] = {}
        self._held: dict[int, Frame] = {}  # per stream: a frame out of sequence

    def drop_partial(self) -> None:
        """Forget buffered bytes (a link went down mid-frame); sequence state is kept."""
        self._drop_shared()
        if self._buf:
            self._discard(len(self._buf))
        self._hunting = False

    def __getattr__(self, name: str) -> int:
        stats = self.__dict__.get("stats")
        if stats is not None and name in DecoderStats.__dataclass_fields__:
            return getattr(stats, name)
        raise AttributeError(name)

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered while waiting for the rest of a candidate frame."""
        return len(self._buf) - self._shared

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes; return the frames completed by them (possibly none)."""
        self._buf += data
        return self._scan(final=False)

    def finish(self) -> list[Frame]:
        """End of stream: resolve buffered bytes (a truncated frame can hide later ones)."""
        out = self._scan(final=True)
        self._drop_shared()
        if self._buf:
            self._discard(len(self._buf))
        for held in self._held.values():  # never confirmed by a next frame
            if held.seq in self._recent.get(held.stream_id, {}):
                self.stats.duplicates += 1
            else:
                self.stats.implausible += 1
        self._held.clear()
        return out

    def _discard(self, n: int) -> None:
        if n <= 0:
            return
        del self._buf[:n]
        self.stats.bytes_discarded += n
        if not self._hunting:
            self._hunting = True
            self.stats.resyncs += 1

    def _reject(self) -> None:
        """The candidate at the buffer's start is no frame: drop its first byte (silently
        when it is the kept last byte of the frame before)."""
        if self._shared:
            self._drop_shared()
        else:
            self._discard(1)

    def _drop_shared(self) -> None:
        """Forget the kept last byte of a decoded frame (not counted as discarded)."""
        if self._shared:
            self._shared = False
            del self._buf[:1]

    def _scan(self, final: bool) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buf
        while True:
            if self._shared:  # a frame ended in 0xEC: it may also be the sync of the next
                if len(buf) < 2 and not final:  # one, sent after a frame truncated by one
                    return out  # byte whose CRC had ended in 0xEC
                if buf[:2] != SYNC:
                    self._drop_shared()
            i = buf.find(SYNC)
            if i < 0:
                self._discard(len(buf) - (1 if buf and buf[-1] == SYNC[0] else 0))
                return out
            self._discard(i)
            if len(buf) < HEADER_LEN:
                if final:
                    self._reject()
                    continue
                return out
            _, ver, flags, sid, status, seq, fs, ts, n = HEADER.unpack_from(buf)
            if ver != VERSION or flags & _FLAG_RESERVED or (flags & 3) > 1 or fs == 0 or n == 0:
                self.stats.bad_headers += not self._shared
                self._reject()
                continue
            fmt = SampleFormat(flags & 3)
            end = HEADER_LEN + n * fmt.width
            if len(buf) < end + CRC_LEN:
                if final:
                    self._reject()
                    continue
                return out
            (crc,) = struct.unpack_from("<I", buf, end)
            if zlib.crc32(memoryview(buf)[:end]) != crc:
                self.stats.crc_failures += not self._shared
                self._reject()
                continue
            samples = _unpack_samples(buf[HEADER_LEN:end], fmt.width)
            # keep a last byte that could be the next frame's sync: a frame truncated by one
            # byte, whose CRC ended in 0xEC, took the next frame's first byte as its own
            self._shared = buf[end + CRC_LEN - 1] == SYNC[0]
            del buf[:end + CRC_LEN - self._shared]
            self._hunting = False
            self._admit(Frame(seq, sid, fs, ts, Status(status), fmt, samples), out)

    def _admit(self, f: Frame, out: list[Frame]) -> None:
        """Sequence accounting of one valid frame (see the class docstring)."""
        sid, seq, ts = f.stream_id, f.seq, f.timestamp_us
        recent = self._recent.setdefault(sid, collections.OrderedDict())
        last = self._last_seq.get(sid)
        if last is None:
            self._deliver(f, 0, out)
            return
        if recent.get(seq) == ts:  # the same frame again: a replay
            self.stats.duplicates += 1
            return
        held = self._held.pop(sid, None)
        if held is not None:
            step_us = (ts - held.timestamp_us) % (1 << 32)
            frame_us = len(held.samples_uv) * 1e6 / held.fs_hz
            if seq == (held.seq + 1) % SEQ_MOD and seq != (last + 1) % SEQ_MOD and \
                    0.5 * frame_us <= step_us <= 1.5 * frame_us:
                self.stats.seq_resets += 1  # confirmed: the device restarted at `held`
                recent.clear()
                self._deliver(dataclasses.replace(held, restart=True), 0, out)
                self._deliver(f, 0, out)
                return
            if held.seq in recent:
                self.stats.duplicates += 1
            else:
                self.stats.implausible += 1
        gap = (seq - last - 1) % SEQ_MOD
        back_us = (self._last_ts[sid] - ts) % (1 << 32) < (1 << 31) and ts != self._last_ts[sid]
        # a few frames lost while the time stamp goes back: one of the two time stamps is
        # wrong (the numbers are right); a big jump forward with it: maybe a restart
        if seq in recent or gap >= SEQ_MOD // 2 or (gap >= RECENT_FRAMES and back_us):
            self._held[sid] = f  # out of sequence: a restart only if the next frame agrees
            return
        self.stats.lost_frames += gap
        self._deliver(f, gap, out)

    def _deliver(self, f: Frame, lost: int, out: list[Frame]) -> None:
        self._remember(f.stream_id, f.seq, f.timestamp_us)
        self.stats.frames += 1
        out.append(dataclasses.replace(f, lost_before=lost) if lost else f)

    def _remember(self, stream_id: int, seq: int, ts_us: int) -> None:
        self._last_seq[stream_id] = seq
        self._last_ts[stream_id] = ts_us
        recent = self._recent.setdefault(stream_id, collections.OrderedDict())
        recent[seq] = ts_us
        recent.move_to_end(seq)
        while len(recent) > RECENT_FRAMES:
            recent.popitem(last=False)
