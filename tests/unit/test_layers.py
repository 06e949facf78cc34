"""The layers point one way (``tests/unit/import_layers.py``), and the check can fail."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.unit.import_layers import (
    PACKAGES,
    arrows,
    circles,
    layer,
    modules,
    pyflink_imports,
    wrong_way,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_is_in_a_layer():
    for name in modules(ROOT):
        layer(name)


def test_no_import_against_the_layers():
    bad = wrong_way(arrows(ROOT))
    assert not bad, "\n".join(map(str, bad))


def test_no_import_circle():
    assert circles(arrows(ROOT)) == []


def _copy(tmp_path: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_planted_wrong_way_import_inside_a_function_fails_the_check(tmp_path):
    root = _copy(tmp_path)
    errors = root / "rtml" / "core" / "errors.py"
    errors.write_text(
        errors.read_text() + "\n\ndef _late():\n    from udfs.flink import features  # noqa\n"
    )
    bad = wrong_way(arrows(root))
    assert [(a.importer, a.imported) for a in bad] == [("rtml.core.errors", "udfs.flink.features")]


def test_a_planted_circle_fails_the_check(tmp_path):
    root = _copy(tmp_path)
    stages = root / "flink_jobs" / "stages.py"
    stages.write_text(stages.read_text() + "\nfrom flink_jobs import graph  # noqa\n")
    assert any({"flink_jobs.graph", "flink_jobs.stages"} <= set(c) for c in circles(arrows(root)))


def test_services_take_only_the_core(tmp_path):
    root = _copy(tmp_path)
    jars = root / "deploy" / "jars.py"
    jars.write_text(jars.read_text() + "\nimport udfs.validation  # noqa\n")
    assert [(a.importer, a.imported) for a in wrong_way(arrows(root))] == [
        ("deploy.jars", "udfs.validation")
    ]


def test_below_the_adapters_nothing_imports_pyflink():
    """The pure logic runs and is tested without a JVM (and offline, for training)."""
    assert pyflink_imports(ROOT, {"core", "store", "logic", "training"}) == []


def test_every_command_is_one_module_owning_its_arguments_and_its_run():
    """``rtml/cli/__init__.py`` is only the entry point: each command of the parser is one
    module of ``rtml.cli.verbs``, named after it."""
    from rtml.cli import parser
    from rtml.cli.verbs import COMMANDS

    names = [c.NAME for c in COMMANDS]
    assert [c.__name__.rsplit(".", 1)[-1] for c in COMMANDS] == names
    assert all(callable(c.add_arguments) and callable(c.run) and c.HELP for c in COMMANDS)
    sub = next(a for a in parser()._actions if a.dest == "cmd")
    assert list(sub.choices) == names
