"""The committed model card is exactly what `python -m training.model_card` builds from the
committed, evaluated runs (so every number in it comes from them)."""

from __future__ import annotations

from training.model_card import CARD, build


def test_model_card_is_regenerated_from_the_runs() -> None:
    assert CARD.read_text() == build(), "run `python -m training.model_card` and commit"
