"""The model registry: a folder layout, nothing more.

    <registry>/<model name>/<version>/model.onnx
                                      metadata.json
                                      model_card.md
                                      reference.parquet   (reference sample for drift)
    <registry>/<model name>/CURRENT                        (the version the job serves)

Versions are whole numbers, allocated in order. A version is written to a temporary folder
and renamed into place, and CURRENT is replaced atomically, so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.store.metadata import ModelMetadata
from rtml.core.errors import ModelError

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
CARD_FILE = "model_card.md"
CURRENT_FILE = "CURRENT"


@dataclass(frozen=True)
class ModelVersion:
    path: Path
    metadata: ModelMetadata

    @property
    def onnx_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def reference_path(self) -> Path:
        return self.path / self.metadata.reference_file


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self, name: str) -> list[str]:
        d = self.root / name
        if not d.is_dir():
            return []
        return sorted((p.name for p in d.iterdir() if p.is_dir() and p.name.isdigit()), key=int)

    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def current_version(self, name: str) -> str | None:
        p = self.root / name / CURRENT_FILE
        return p.read_text().strip() if p.is_file() else None

    def next_version(self, name: str) -> str:
        vs = self.versions(name)
        return str(int(vs[-1]) + 1) if vs else "1"

    def resolve(self, name: str, version: str = "current") -> ModelVersion:
        if version == "current":
            cur = self.current_version(name)
            if cur is None:
                raise ModelError(
                    f"no current version of model {name!r} in registry {self.root}",
                    hint="train and export one with `rtml train` then `rtml export`",
                )
            version = cur
        path = self.root / name / version
        if not path.is_dir():
            raise ModelError(
                f"model {name!r} has no version {version} in {self.root}",
                hint=f"pick one of {self.versions(name)} (see `rtml models list`)",
            )
        meta = ModelMetadata.load(path / METADATA_FILE)
        mv = ModelVersion(path, meta)
        if not mv.onnx_path.is_file():
            raise ModelError(
                f"model {name!r} version {version}: {MODEL_FILE} is missing",
                hint="re-export the model",
            )
        return mv

    def verify(self, mv: ModelVersion) -> None:
        """Refuse a model whose ONNX file does not match the hash recorded at export."""
        actual = sha256_file(mv.onnx_path)
        if actual != mv.metadata.onnx_sha256:
            raise ModelError(
                f"model {mv.metadata.name!r} version {mv.metadata.version}: {MODEL_FILE} has sha256 {actual[:12]}..., metadata says {mv.metadata.onnx_sha256[:12]}...",
                hint="the file is corrupt or was replaced; re-export it",
            )

    def publish(
        self, name: str, version: str, build: dict[str, bytes | Path], make_current: bool = True
    ) -> None:
        """Write files (file name -> bytes, or a path to copy) as ``version`` of ``name``."""
        (self.root / name).mkdir(parents=True, exist_ok=True)
        if (self.root / name / version).exists():
            raise ModelError(
                f"model {name!r} version {version} already exists in {self.root}",
                hint="export again; versions are never overwritten",
            )
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.root / name))
        try:
            for fname, content in build.items():
                if isinstance(content, Path):
                    shutil.copyfile(content, tmp / fname)
                else:
                    (tmp / fname).write_bytes(content)
            os.rename(tmp, self.root / name / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if make_current:
            self.set_current(name, version)

    def set_current(self, name: str, version: str) -> None:
        if version not in self.versions(name):
            raise ModelError(
                f"model {name!r} has no version {version}",
                hint=f"pick one of {self.versions(name)}",
            )
        d = self.root / name
        fd, tmp = tempfile.mkstemp(prefix=".CURRENT-", dir=d)
        with os.fdopen(fd, "w") as f:
            f.write(version + "\n")
        os.replace(tmp, d / CURRENT_FILE)
