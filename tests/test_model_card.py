"""The committed model card is exactly what `python -m training.model_card` builds from the
committed, evaluated runs (so every number in it comes from them)."""

from __future__ import annotations

from training.model_card import BEGIN, CARD, END, README, build, readme_block


def test_model_card_is_regenerated_from_the_runs() -> None:
    assert CARD.read_text() == build(), "run `python -m training.model_card` and commit"


def test_readme_results_are_regenerated_from_the_runs() -> None:
    text = README.read_text()
    block = BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert block == readme_block(), "run `python -m training.model_card` and commit"
