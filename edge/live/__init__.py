"""Live view of a streaming session in a browser (`ecg12 stream --view`)."""

from edge.live.server import LiveView

__all__ = ["LiveView"]
