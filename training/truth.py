"""The scoring truth: the recording itself, band-passed zero-phase, independent of `edge`.

A clinician lays our output next to the real 12-lead recording, so accuracy is scored against
the recording band-limited the way ECG machines do it, never against our own conditioning:
a 2nd-order Butterworth band-pass 0.5-40 Hz (IEC 60601-2-27 "monitoring" bandwidth) run
forward and backward (``scipy.signal.sosfiltfilt``: zero phase, as the AHA/ACC/HRS 2007
recommendations require for a 0.5 Hz high-pass), then ``scipy.signal.resample_poly`` to the
scoring rate (zero-phase polyphase FIR).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

#: Truth band (Hz) and Butterworth order (per edge, before the forward-backward doubling).
TRUTH_BAND_HZ = (0.5, 40.0)
TRUTH_ORDER = 2
TRUTH_TEXT = ("the recording band-passed 0.5-40 Hz zero-phase (2nd-order Butterworth, "
              "forward-backward, scipy.signal.sosfiltfilt)")


def truth_signal(x_mv: np.ndarray, fs_in_hz: float, fs_out_hz: float | None = None
                 ) -> np.ndarray:
    """``x_mv`` ((n,) or (n, c) mV at ``fs_in_hz``) band-passed zero-phase, at ``fs_out_hz``
    (default: the input rate); float64, ceil(n * fs_out / fs_in) samples aligned with x."""
    x = np.asarray(x_mv, dtype=np.float64)
    lo, hi = TRUTH_BAND_HZ
    hi = min(hi, 0.45 * fs_in_hz)
    sos = signal.butter(TRUTH_ORDER, [lo, hi], "bandpass", fs=fs_in_hz, output="sos")
    y = signal.sosfiltfilt(sos, x, axis=0)
    fs_out = fs_in_hz if fs_out_hz is None else fs_out_hz
    if fs_out != fs_in_hz:
        ratio = Fraction(fs_out / fs_in_hz).limit_denominator(1000)
        y = signal.resample_poly(y, ratio.numerator, ratio.denominator, axis=0)
    return y
