"""A drift snapshot cut short (a writer killed mid-file) must not stop the workspace from
opening: the drift operator opens it in ``open`` and would otherwise restart forever."""

from __future__ import annotations

import uuid

from udfs.drift import ReportWorkspace


def test_a_truncated_snapshot_is_quarantined_and_the_workspace_opens(tmp_path, capsys):
    ws = ReportWorkspace(tmp_path, "p")
    snapshots = tmp_path / str(ws.project.id) / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    bad = snapshots / f"{uuid.uuid4()}.json"
    bad.write_text('{"id": "cut sh')

    reopened = ReportWorkspace(tmp_path, "p")

    assert reopened.project.id == ws.project.id
    assert not bad.exists()
    assert (tmp_path / "quarantine" / str(ws.project.id) / bad.name).exists()
    err = capsys.readouterr().err
    assert str(bad) in err and "not valid JSON" in err
