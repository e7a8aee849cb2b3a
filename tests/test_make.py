"""The Makefile's targets fail with a line that says what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_test_citus_without_the_citus_source_says_to_set_citus_src(tmp_path):
    # a clone with its .venv installed, somewhere without ../shared/citus/
    shutil.copy(ROOT / "Makefile", tmp_path)
    (tmp_path / "pyproject.toml").touch()
    os.utime(tmp_path / "pyproject.toml", (1_000_000_000, 1_000_000_000))  # older than the stamp: nothing to install
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("#!/bin/sh\necho /nowhere/pg_config\n")
    (bin_dir / "python").chmod(0o755)
    (tmp_path / ".venv" / ".installed").touch()
    out = subprocess.run(
        ["make", "-s", "test-citus", f"CITUS_SRC={tmp_path / 'no-citus'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.splitlines()[0] == (
        f"make test-citus builds Citus from its source: expected {tmp_path / 'no-citus'}/build.sh, got none; "
        "set CITUS_SRC to the directory holding build.sh and the Citus tarball (default ../shared/citus)"
    )
