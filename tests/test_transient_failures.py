"""Transient failures are retried, never recorded as final skips (issue 9, item 3).

Each fault is real: the ffmpeg child that renders one source is killed with SIGKILL (what the
OOM killer sends), interrupted with SIGINT (a Ctrl-C that reached ffmpeg but not Python), or
writes its outputs to ``/dev/full`` (the kernel's ENOSPC, as on a full disk). The run must exit
non-zero and name the source; a rerun with the fault gone must give exactly the rows of an
uninterrupted run.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ssvqa.pairs.distortion import build_distortion_pairs
from ssvqa.pairs.resumable import run_resumable
from ssvqa.pairs.sources import InputItem
from ssvqa.cli import main as cli_main
from ssvqa.distortions import _run_ffmpeg
from ssvqa.errors import TransientError

OPTIONS = dict(types=["gaussian_blur", "h264"], types_per_source=2, max_pixels=96 * 72, test_fraction=0.5, seed=0)
CLI_OPTIONS = ["--types", "gaussian_blur,h264", "--types-per-source", "2", "--max-pixels", str(96 * 72),
               "--test-fraction", "0.5", "--seed", "0"]
FAULTY = "b.mp4"  # the source whose rendering fails


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    from conftest import make_video

    root = tmp_path_factory.mktemp("sources")
    make_video(root / "a.mp4", size="96x72", rate=10, duration=0.5)
    make_video(root / FAULTY, size="96x72", rate=10, duration=0.5, source="mandelbrot")
    make_video(root / "c.mp4", size="96x72", rate=10, duration=0.5, source="smptebars")
    return root


@pytest.fixture(scope="module")
def reference(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "pairs"
    report = build_distortion_pairs(sources, out, **OPTIONS)
    assert report.sources == 3 and not report.skipped and not report.retry
    return out


def read_rows(folder: Path) -> dict[str, list[dict]]:
    """Every row per split, in file order, videos replaced by (name, sha256 of the bytes)."""
    rows: dict[str, list[dict]] = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            for column in ("video_a", "video_b"):
                row[column] = (row[column]["path"], hashlib.sha256(row[column]["bytes"]).hexdigest())
            rows.setdefault(path.name.split("-")[0], []).append(row)
    return rows


def faulty_ffmpeg(monkeypatch, fault: str) -> list[int]:
    """Make the ffmpeg that renders FAULTY fail with ``fault``; returns its exit statuses."""
    from conftest import default_sigint

    real_run = subprocess.run
    statuses: list[int] = []

    def run(cmd, *args, **kwargs):
        if not (cmd[0] == "ffmpeg" and "-filter_complex" in cmd and cmd[cmd.index("-i") + 1].endswith(FAULTY)):
            return real_run(cmd, *args, **kwargs)
        if fault == "enospc":  # every output goes to /dev/full: the kernel answers ENOSPC
            outputs = [i for i, arg in enumerate(cmd) if arg.endswith(".mp4") and cmd[i - 1] != "-i"]
            cmd = [part for i, arg in enumerate(cmd) for part in (["-f", "mp4", "/dev/full"] if i in outputs else [arg])]
            result = real_run(cmd, *args, **kwargs)
        else:
            kwargs.pop("capture_output")
            child = subprocess.Popen(cmd, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=default_sigint, **kwargs)
            child.send_signal(signal.SIGKILL if fault == "kill" else signal.SIGINT)
            out, err = child.communicate()
            result = subprocess.CompletedProcess(cmd, child.returncode, out, err)
        statuses.append(result.returncode)
        return result

    monkeypatch.setattr(subprocess, "run", run)
    return statuses


@pytest.mark.parametrize("fault", ["kill", "interrupt", "enospc"])
def test_a_faulty_render_is_retried_and_the_rerun_equals_an_uninterrupted_run(sources, reference, tmp_path, monkeypatch, capsys, fault):
    out = tmp_path / "pairs"
    with monkeypatch.context() as patch:
        statuses = faulty_ffmpeg(patch, fault)
        code = cli_main(["build-distortion-pairs", str(sources), "-o", str(out), *CLI_OPTIONS])
    assert statuses and statuses[0] != 0
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert FAULTY in captured.out and "Rerun the same command" in captured.out
    reason = {"kill": "killed by SIGKILL", "interrupt": "(killed by SIGINT|interrupted)", "enospc": "No space left on device"}[fault]
    assert re.search(rf"{FAULTY}: ffmpeg (was )?{reason}", captured.out) or re.search(rf"{FAULTY}: .*{reason}", captured.out)
    # Not recorded as a skip, neither in the work folder nor in the dataset's skipped list.
    assert not list((out / ".work" / "skipped").glob("*.json"))
    assert not any(FAULTY in p.read_text() for p in out.glob("skipped-*.jsonl"))

    report = build_distortion_pairs(sources, out, **OPTIONS)  # the fault is gone
    assert report.ran == 1 and report.reused == 2 and not report.retry and not report.skipped
    assert read_rows(out) == read_rows(reference)


def test_an_unreadable_source_is_retried_not_skipped(sources, reference, tmp_path, monkeypatch, capsys):
    """EACCES (simulated: the tests run as root, which permissions do not stop)."""
    real_open = os.open

    def denying_open(path, flags, *args, **kwargs):
        if str(path).endswith(FAULTY):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    out = tmp_path / "pairs"
    with monkeypatch.context() as patch:
        patch.setattr(os, "open", denying_open)
        code = cli_main(["build-distortion-pairs", str(sources), "-o", str(out), *CLI_OPTIONS])
    captured = capsys.readouterr()
    assert code == 1 and f"{FAULTY}: cannot be read: Permission denied" in captured.out
    assert not list((out / ".work" / "skipped").glob("*.json"))
    report = build_distortion_pairs(sources, out, **OPTIONS)
    assert report.ran == 1 and not report.retry and not report.skipped
    assert read_rows(out) == read_rows(reference)


def test_ffmpeg_interrupted_while_running_is_transient(tmp_path, monkeypatch):
    """A SIGINT that reaches a running ffmpeg makes it exit 255 (not a signal death)."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-y", "-re",
           "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-t", "30", str(tmp_path / "out.mp4")]
    real_popen = subprocess.Popen
    children = []

    class Recording(real_popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            children.append(self)

    def interrupt():
        while not children:
            time.sleep(0.05)
        time.sleep(1.0)  # ffmpeg is encoding by now
        children[0].send_signal(signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    monkeypatch.setattr(subprocess, "Popen", Recording)
    with pytest.raises(TransientError, match="interrupted") as info:
        _run_ffmpeg(cmd, Path("clip.mp4"))
    assert children[0].returncode == 255 and info.value.path == "clip.mp4"


def _worker(item: InputItem, out_dir: Path, fail: str = "") -> dict:
    if item.name == fail:
        raise OSError(errno.ENOSPC, "No space left on device")
    (out_dir / "size.txt").write_text(str(item.path.stat().st_size))
    return {"size": item.path.stat().st_size}


def test_an_oserror_like_enospc_in_the_worker_is_not_recorded(tmp_path):
    import functools

    items = []
    for name in ("x", "y"):
        (tmp_path / name).write_bytes(name.encode() * 3)
        items.append(InputItem(name, tmp_path / name, name))
    work = tmp_path / "work"
    first = run_resumable(items, functools.partial(_worker, fail="y"), work_dir=work)
    assert [s.input for s in first.skipped] == ["y"] and not first.skipped[0].final
    assert "No space left on device" in first.skipped[0].reason
    assert not (work / "skipped").exists()
    second = run_resumable(items, _worker, work_dir=work)
    assert second.ran == 1 and second.reused == 1 and not second.skipped
    assert [f.result for f in second.finished] == [{"size": 3}, {"size": 3}]
