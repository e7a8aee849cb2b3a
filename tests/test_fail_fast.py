"""Mistakes reported before the work, not after it; no third-party warning breaks -W error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from semsearch.cli import main
from tests.plugin_postgres import server_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_connect_works_under_w_error_without_xdg_runtime_dir(server_url):
    # the embedded server of this test run (started by server_url), as a user's script finds it
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "SEMSEARCH_DATABASE_URL")}
    env.update(SEMSEARCH_DATA_DIR=str(server_data_dir()), PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import semsearch; semsearch.connect().close(); print('ok')"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout == "ok\n", out.stderr


def test_eval_plot_without_matplotlib_fails_before_the_sweep(db, monkeypatch, tmp_path):
    db.create_collection("p", dims=4, model="label", compression="none")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    got = CliRunner().invoke(main, ["--url", db.url, "eval", "p", "--plot", str(tmp_path / "r.png")])
    assert got.exit_code == 1
    assert got.output == "Error: --plot needs matplotlib: pip install 'semsearch[plot]'\n"
    assert not (tmp_path / "r.png").exists()


#: a launcher for which wordllama is not installed (``pip install semsearch`` without the ``local`` extra)
NO_LOCAL = "import sys; sys.modules['wordllama'] = None; "


def _without_local(*args: str, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", NO_LOCAL + code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_local_model_without_its_extra_is_refused_when_the_collection_is_created(db_url, db):
    code = (
        "import semsearch, semsearch.errors\n"
        "with semsearch.connect(sys.argv[1]) as db:\n"
        "    try:\n"
        "        db.create_collection('notes', model='local')\n"
        "    except semsearch.errors.ConfigurationError as exc:\n"
        "        print(exc)\n"
    )
    out = _without_local(db_url, code=code)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "expected the wordllama package for model 'local', got none installed: pip install 'semsearch[local]'\n"
    )
    assert db.collections() == []  # nothing was created


def test_the_demo_without_the_local_extra_says_which_extra_in_one_line(db_url):
    code = "sys.argv[0] = 'semsearch'; from semsearch.cli import main; main()"
    out = _without_local("--url", db_url, "demo", "--rows", "5", code=code)
    assert out.returncode == 1
    assert out.stderr == (
        "Error: expected the wordllama package for model 'local', got none installed: pip install 'semsearch[local]'\n"
    )
