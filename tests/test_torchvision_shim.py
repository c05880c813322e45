"""The torchvision shim reaches every interpreter of the environment, and costs nothing until needed."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The commands of the issue (each failed with "operator torchvision::nms does not exist" unless ssvqa
# was imported first): transformers and evaluate, the project's evaluate metric, a user script that
# touches a transformers video processor before ssvqa.
COMMANDS = (
    "import transformers, evaluate; print(evaluate.load('ssvqa/metrics/vqa_correlation').compute("
    "predictions=[1, 2, 3, 4, 5], references=[1, 2, 3, 5, 4])['srcc'])",
    "from transformers import Qwen2VLVideoProcessor; import torch; "
    "print(Qwen2VLVideoProcessor()(videos=[torch.zeros(2, 3, 56, 56, dtype=torch.uint8)], return_tensors='pt')['video_grid_thw'].tolist())",
)

BOOTSTRAP_STEP = (ROOT / "scripts" / "bootstrap.sh").read_text().split("SHIM_STEP='")[1].split("'")[0]


def _run(python: str, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bootstrap_hook_makes_fresh_interpreters_work(tmp_path):
    # A throwaway venv that sees this environment's packages, as bootstrap.sh's .venv does.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = _run(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    Path(site, "shared-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    before = _run(python, "import torchvision")
    if before.returncode != 0:  # where torchvision's own ops load, the hook must simply change nothing
        assert "torchvision::nms does not exist" in before.stderr

    # What scripts/bootstrap.sh runs, twice: idempotent.
    for _ in range(2):
        installed = _run(python, BOOTSTRAP_STEP)
        assert installed.returncode == 0, installed.stderr
    assert [p.name for p in Path(site).glob("ssvqa*.pth")] == ["ssvqa-torchvision-shim.pth"]

    results = [_run(python, code) for code in COMMANDS]
    for code, result in zip(COMMANDS, results):
        assert result.returncode == 0, (code, result.stderr[-2000:])
    assert float(results[0].stdout.strip().splitlines()[-1]) == pytest.approx(0.9)
    assert results[1].stdout.strip().splitlines()[-1].startswith("[[1, ")  # 2 frames: one temporal patch


def test_import_ssvqa_and_its_hook_do_not_import_torch():
    code = (
        "import sys, ssvqa; assert 'torch' not in sys.modules and 'torchvision' not in sys.modules; "
        "from ssvqa._torchvision_shim import install_import_hook as hook; assert hook() and hook(); "
        "from ssvqa import RankConfig, RankTrainer, DataCollatorForVideoPairs, QualityScorer, VideoSampling, load_ranker; "
        "import torchvision.transforms.v2; print(VideoSampling().frame_rate)"
    )
    result = _run(sys.executable, code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("2.0")
