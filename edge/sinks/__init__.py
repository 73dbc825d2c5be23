"""Sinks: reconstructed leads to CSV (default) or WFDB, NDJSON events, the report figure."""

from edge.sinks.csv import CsvSink, SinkError, read_csv
from edge.sinks.events import EventWriter

__all__ = ["CsvSink", "EventWriter", "SinkError", "read_csv"]
