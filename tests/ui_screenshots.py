"""Screenshots of what a reviewer sees in `rtml ui`: the project's dashboard and a drift report,
taken in a real headless browser (Debian's chromium) from the Evidently UI over a workspace.

    .venv/bin/python -m tests.ui_screenshots [--workspace .rtml/workspace] [--out docs/images]

``--virtual-time-budget`` lets the page fetch its data and draw before the shot. Needs
``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from rtml.core import paths
from tests.evidently_ui import get, serving

BUDGET_MS = 30_000


def shoot(url: str, out: Path, size: str = "1400,1100") -> Path:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--window-size={size}",
            f"--virtual-time-budget={BUDGET_MS}",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", type=Path, default=paths.workspace_dir())
    p.add_argument("--out", type=Path, default=paths.REPO_ROOT / "docs" / "images")
    p.add_argument("--project", default=None, help="project name (default: the first)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    with serving(a.workspace) as base:
        projects = get(f"{base}/api/projects")
        matches = [x for x in projects if a.project in (None, x["name"])]
        if not matches:
            raise SystemExit(f"no project {a.project or ''!r} in {a.workspace}")
        pid = matches[0]["id"]
        shots = [shoot(f"{base}/projects/{pid}", a.out / "ui-dashboard.png", "1400,2000")]
        reports = get(f"{base}/api/projects/{pid}/reports")
        drifted = [r for r in reports if "drift" in r.get("tags", [])]
        if drifted:
            last = max(drifted, key=lambda r: r.get("timestamp", ""))
            shots.append(
                shoot(f"{base}/projects/{pid}/reports/{last['id']}", a.out / "ui-drift-report.png")
            )
    for s in shots:
        print(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
