"""Every odd-input kind (tests/odd_inputs.py) through every tool: used, or refused with the file
named and the reason; no traceback; nothing dropped silently. The same data makes the table in
tests/README.md, which a test keeps current.

The inputs are made once in one folder; each tool runs once on that folder, as the command a user
types (a subprocess, so a traceback or an exit code is seen as the user sees it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from odd_inputs import KINDS, TOOLS, USED, make_all, readme_table, render_table, tool_env
from conftest import make_video

TOOL_OPTIONS = {
    # One drawn type at its mildest level: each usable source gives a pair cheaply. One split:
    # a video alone in its split would have no partner for pseudo pairs.
    "build-distortion-pairs": ["--types-per-source", "1", "--levels", "1", "--max-pixels", str(160 * 120), "--test-fraction", "0"],
    "build-pseudo-pairs": ["--teachers", "classical", "--test-fraction", "0"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each tool's exit code, output, and the entries it used (by entry name)."""
    root = tmp_path_factory.mktemp("odd-inputs")
    folder = root / "odd"
    make_all(folder)
    env = tool_env(root / "hook")

    from ssvqa.scorer import QualityScorer
    from ssvqa.testing import save_tiny_model

    model = save_tiny_model(root / "model")
    anchors = [(make_video(root / "anchors" / f"a{i}.mp4", size="112x84", source=s), 30.0 * (i + 1))
               for i, s in enumerate(("smptebars", "testsrc2", "mandelbrot"))]
    QualityScorer.from_pretrained(model, anchors).save_anchors(model)

    results = {}
    for tool in TOOLS:
        if tool == "score":
            args = [str(folder), "--model", str(model), "--no-progress", "-o", str(root / "scores.json")]
        else:
            args = [str(folder), "-o", str(root / tool), *TOOL_OPTIONS[tool]]
        done = subprocess.run([sys.executable, "-m", "ssvqa.cli", tool, *args], capture_output=True, text=True,
                              env=env, timeout=600)
        output = done.stdout + done.stderr
        if tool == "score":
            scores_file = root / "scores.json"
            used = {Path(v).name for v in json.loads(scores_file.read_text())["scores"]} if scores_file.exists() else set()
        else:
            used = _sources_in_rows(root / tool)
        results[tool] = {"returncode": done.returncode, "output": output, "used": used}
    return results


def _sources_in_rows(dataset: Path) -> set[str]:
    """Entry names of the videos that rows of a pair dataset were made from."""
    names = set()
    for part in sorted((dataset / "data").glob("*.parquet")):
        for provenance in pq.read_table(part, columns=["provenance"]).column("provenance").to_pylist():
            record = json.loads(provenance)
            names |= {Path(record[key]).name for key in ("source", "source_a", "source_b") if key in record}
    return names


@pytest.mark.parametrize("tool", TOOLS)
def test_no_traceback_and_a_usable_result(runs, tool):
    run = runs[tool]
    assert "Traceback" not in run["output"], run["output"][-3000:]
    assert run["returncode"] in (0, 1), run["output"][-3000:]
    assert run["used"], run["output"][-3000:]
    # Quiet: no bar with --no-progress, no notice about an optional package, counts in English.
    if tool == "score":
        assert "Loading weights" not in run["output"], run["output"][-3000:]
    assert "gemm_4bit_forward" not in run["output"] and not re.search(r"\b1 videos\b", run["output"])


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("kind", KINDS, ids=[k.entry for k in KINDS])
def test_cell(runs, kind, tool):
    run = runs[tool]
    expected = kind.expected(tool)
    if kind.twin is not None:
        assert kind.twin in run["used"], f"{kind.twin} (kept twin) not used by {tool}"
    if expected == USED:
        assert kind.entry in run["used"], f"{tool} did not use {kind.entry}:\n{run['output'][-3000:]}"
        return
    assert kind.entry not in run["used"], f"{tool} used {kind.entry}, expected: {expected}"
    lines = [line for line in run["output"].splitlines() if kind.entry in line]
    assert any(re.search(expected, line) for line in lines), (
        f"{tool}: no line names {kind.entry} with a reason matching {expected!r}; lines naming it: {lines}\n"
        f"{run['output'][-3000:]}"
    )


def test_readme_table_is_current():
    assert readme_table(Path(__file__).with_name("README.md")) == render_table(), "run: python tests/odd_inputs.py"
