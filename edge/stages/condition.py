"""Condition stage: raw Lead I in; zero-phase band-limited Lead I out, at the model rate (the
model's input) and at the input rate (the output's Lead I). See ``edge.conditioning``."""

from __future__ import annotations

import numpy as np

from edge.conditioning import ConditioningConfig, StreamConditioner


class ConditionStage:
    """``push(raw)`` / ``flush()`` -> (newly final model-rate samples, input-rate samples).

    Both outputs are aligned with the input (sample j at time j / rate); they lag the input's
    arrival by the conditioners' look-ahead, and ``flush`` releases the rest.
    """

    def __init__(self, fs_in_hz: float, fs_model_hz: float, config: ConditioningConfig
                 ) -> None:
        self.to_model = StreamConditioner(fs_in_hz, fs_model_hz, 1, config)
        self.at_input = (None if fs_in_hz == fs_model_hz
                         else StreamConditioner(fs_in_hz, fs_in_hz, 1, config))

    @property
    def lookahead_s(self) -> float:
        """How long after an input sample arrives its outputs are final (both rates: the
        shorter)."""
        return min(c.lookahead_s() for c in (self.to_model, self.at_input) if c is not None)

    def push(self, raw_mv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ym = np.asarray(self.to_model.process(raw_mv), dtype=np.float64)
        yi = ym if self.at_input is None else self.at_input.process(raw_mv)
        return ym, yi

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        ym = np.asarray(self.to_model.flush(squeeze=True), dtype=np.float64)
        yi = ym if self.at_input is None else self.at_input.flush(squeeze=True)
        return ym, yi
