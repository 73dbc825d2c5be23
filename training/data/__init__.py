"""Data layer: corpus readers -> `Recording`, load-time checks, patient-level splits."""

from .loaders import CORPORA, LoadReport, data_root, load_all, load_corpus
from .ptbxl import dedupe_prefer_rate
from .record import MISSING, DataError, Recording, RecordRejected

__all__ = [
    "CORPORA", "MISSING", "DataError", "LoadReport", "RecordRejected", "Recording",
    "data_root", "dedupe_prefer_rate", "load_all", "load_corpus",
]
