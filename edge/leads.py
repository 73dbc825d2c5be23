"""Standard 12-lead order and the exact derivation of limb leads from I and II.

Einthoven: III = II - I.  Goldberger: aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2.
The model predicts only the independent leads (II, V1-V6); the other limb leads are derived
here so that every 12-lead output is physically consistent.
"""

from __future__ import annotations

import numpy as np

LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)
LEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(LEADS)}
#: Leads the model predicts directly, in model-output order.
PREDICTED: tuple[str, ...] = ("II", "V1", "V2", "V3", "V4", "V5", "V6")
#: Leads derived exactly from I and II.
DERIVED: tuple[str, ...] = ("III", "aVR", "aVL", "aVF")
#: The 11 reconstructed leads (everything but the input Lead I).
RECONSTRUCTED: tuple[str, ...] = LEADS[1:]


def canonical_lead_name(name: str) -> str:
    """Map a lead label in any case ('AVR', 'avr', 'v1') to the standard spelling."""
    key = name.strip().upper()
    for lead in LEADS:
        if lead.upper() == key:
            return lead
    raise ValueError(f"unknown lead name {name!r}; expected one of {', '.join(LEADS)}")


def assemble_12_lead(lead_i: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Build (n, 12) leads from Lead I (n,) and the predicted leads (n, 7) in PREDICTED order."""
    lead_i = np.asarray(lead_i, dtype=np.float32)
    predicted = np.asarray(predicted, dtype=np.float32)
    if predicted.ndim != 2 or predicted.shape[1] != len(PREDICTED):
        raise ValueError(f"predicted leads must have shape (n, 7), got {predicted.shape}")
    if lead_i.shape != (predicted.shape[0],):
        raise ValueError(f"lead_i shape {lead_i.shape} does not match predicted {predicted.shape}")
    ii = predicted[:, 0]
    out = np.empty((lead_i.shape[0], 12), dtype=np.float32)
    out[:, 0] = lead_i
    out[:, 1] = ii
    out[:, 2] = ii - lead_i
    out[:, 3] = -(lead_i + ii) / 2
    out[:, 4] = lead_i - ii / 2
    out[:, 5] = ii - lead_i / 2
    out[:, 6:] = predicted[:, 1:]
    return out


def derived_std(std_ii: np.ndarray) -> np.ndarray:
    """Std of (III, aVR, aVL, aVF) given the std of II (Lead I is measured, so exact).

    III = II - I -> std(II); aVR = -(I+II)/2 -> std(II)/2; aVL = I - II/2 -> std(II)/2;
    aVF = II - I/2 -> std(II).
    """
    s = np.asarray(std_ii, dtype=np.float32)
    return np.stack([s, s / 2, s / 2, s], axis=-1)
