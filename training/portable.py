"""Move prepared (conditioned) training data to another machine, e.g. a GPU box without wfdb.

`save_prepared` writes the conditioned records of the chosen splits, and their scoring truth
(`training.truth`), as int16 µV (the resolution of the source corpora) for the 8 independent
leads (I, II, V1–V6; III, aVR, aVL,
aVF are linear in I and II and are rebuilt exactly) plus their metadata, in one compressed
`.npz`. `load_prepared` rebuilds the `Prepared` lists that `training.train.train(data=...)`
takes. Usage on the remote machine:

    python -m training.portable train CONFIG DATA.npz OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edge.leads import LEAD_INDEX, assemble_12_lead

_KEEP = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


def save_prepared(data: dict, path: Path, splits: tuple[str, ...] = ("train", "val")) -> None:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, list] = {}
    idx = [LEAD_INDEX[n] for n in _KEEP]
    for split in splits:
        preps = data[split]
        lens = [p.leads12.shape[0] for p in preps]
        n = min(lens)
        for suffix, attr in (("", "leads12"), ("_truth", "truth12")):
            arrays[split + suffix] = np.stack(
                [np.clip(np.round(getattr(p, attr)[-n:, idx] * 1000), -32768, 32767)
                 for p in preps]).astype(np.int16)
        meta[split] = [{"key": p.key, "source": p.source, "meta": p.meta, "rhythm": p.rhythm}
                       for p in preps]
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def load_prepared(path: Path) -> dict:
    from training.dataset import Prepared

    z = np.load(path)
    meta = json.loads(str(z["meta"]))
    out: dict[str, list] = {"train": [], "val": [], "test": []}
    for split, items in meta.items():
        if f"{split}_truth" not in z:
            raise ValueError(f"{path}: no '{split}_truth' array (made by an older ecg12); "
                             "export it again with save_prepared")
        arr = z[split].astype(np.float32) / 1000.0
        tru = z[f"{split}_truth"].astype(np.float32) / 1000.0
        for a, t, m in zip(arr, tru, items, strict=True):
            leads12 = assemble_12_lead(a[:, 0], a[:, 1:])  # I, then II, V1..V6
            truth12 = assemble_12_lead(t[:, 0], t[:, 1:])
            out[split].append(Prepared(m["key"], m["source"], leads12, truth12, m["meta"],
                                       m["rhythm"]))
    return out


def main(argv: list[str]) -> None:
    from training.config import TrainConfig
    from training.train import train

    if len(argv) != 4 or argv[0] != "train":
        raise SystemExit("usage: python -m training.portable train CONFIG DATA.npz OUT_DIR")
    cfg = TrainConfig.load(Path(argv[1]))
    train(cfg, Path(argv[3]), resume=False, data=load_prepared(Path(argv[2])))


if __name__ == "__main__":
    main(sys.argv[1:])
