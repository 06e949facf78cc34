"""Faulty model versions, registered next to a good one, for the hot-swap rejection tests.

Each is published through the registry like a real export, so only the load-time checks
(hash, ONNX Runtime, schema, probe row) can stop it.
"""

from __future__ import annotations

from dataclasses import replace

import onnx

from models.store.metadata import ModelInput
from models.store.registry import CARD_FILE, METADATA_FILE, MODEL_FILE, ModelVersion, Registry


def _publish(reg: Registry, good: ModelVersion, onnx_bytes: bytes, **meta) -> str:
    import hashlib

    name = good.metadata.name
    version = reg.next_version(name)
    sha = meta.pop("onnx_sha256", hashlib.sha256(onnx_bytes).hexdigest())
    metadata = replace(good.metadata, version=version, onnx_sha256=sha, **meta)
    reg.publish(
        name,
        version,
        {
            MODEL_FILE: onnx_bytes,
            METADATA_FILE: metadata.to_json().encode(),
            CARD_FILE: (good.path / CARD_FILE).read_bytes(),
            metadata.reference_file: good.reference_path,
        },
        make_current=False,
    )
    return version


def tampered(reg: Registry, good: ModelVersion) -> str:
    """The file was replaced after export: its bytes no longer match the recorded hash."""
    data = bytearray(good.onnx_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    return _publish(reg, good, bytes(data), onnx_sha256=good.metadata.onnx_sha256)


def truncated(reg: Registry, good: ModelVersion) -> str:
    """A corrupt file whose hash was recorded as is: only ONNX Runtime can refuse it."""
    return _publish(reg, good, good.onnx_path.read_bytes()[:2000])


def renamed_input(reg: Registry, good: ModelVersion, old: str, new: str) -> str:
    """A consistent model (graph and metadata agree) that needs an input the job lacks."""
    model = onnx.load(str(good.onnx_path))
    for node in model.graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
    for i in model.graph.input:
        if i.name == old:
            i.name = new
    inputs = tuple(
        ModelInput(new if i.name == old else i.name, i.type) for i in good.metadata.inputs
    )
    return _publish(reg, good, model.SerializeToString(), inputs=inputs)


def wrong_input_type(reg: Registry, good: ModelVersion, name: str) -> str:
    """Metadata says ``name`` is a string, the graph takes a float: fails on the first row."""
    inputs = tuple(
        ModelInput(i.name, "string" if i.name == name else i.type) for i in good.metadata.inputs
    )
    return _publish(reg, good, good.onnx_path.read_bytes(), inputs=inputs)


def all_faults(reg: Registry, good: ModelVersion, numeric_input: str) -> dict[str, str]:
    """Publish one of each; returns fault name -> version."""
    assert numeric_input in good.metadata.input_names
    return {
        "tampered": tampered(reg, good),
        "truncated": truncated(reg, good),
        "renamed_input": renamed_input(reg, good, numeric_input, numeric_input + "_usd"),
        "wrong_input_type": wrong_input_type(reg, good, numeric_input),
    }


def with_metadata(reg: Registry, good: ModelVersion, **meta) -> str:
    """Not a fault: the same model under a new version whose metadata differs (``meta``),
    e.g. one exported with a calibrated drift test."""
    return _publish(reg, good, good.onnx_path.read_bytes(), **meta)
