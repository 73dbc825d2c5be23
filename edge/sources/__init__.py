"""Sources: async iterators of Chunk chosen by URI (sim:, serial:, polar:, ble:, file:)."""

from edge.sources.base import DeviceSource, Source, SourceStats
from edge.sources.errors import (
    DeviceNotFound,
    DeviceProtocolError,
    Disconnected,
    RecordingError,
    SourceError,
    SourceURIError,
)
from edge.sources.uri import open_source, parse_uri

__all__ = [
    "DeviceNotFound", "DeviceProtocolError", "DeviceSource", "Disconnected", "RecordingError",
    "Source", "SourceError", "SourceStats", "SourceURIError", "open_source", "parse_uri",
]
