"""Ordinary mistakes end in one clear line, never a traceback (issue 9, items 4, 5, 6 and 10).

Exit status: 2 for a usage error (the line names the argument or file and the reason), 1 when
nothing usable was made, 130 on Ctrl-C. Mistyped local paths fail at once instead of waiting
for the Hub; folder listings report symlink loops, broken links and folders named like videos.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssvqa.cli import main as cli_main
from ssvqa.video import list_videos, unusable_reason

REPO = Path(__file__).resolve().parents[1]
FAST = ["--types", "h264", "--types-per-source", "1", "--levels", "1", "--max-pixels", str(96 * 72)]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``ssvqa ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli_main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two good clips, and the odd entries: a symlink loop, a broken symlink, a folder named like a video."""
    from conftest import make_video

    root = tmp_path_factory.mktemp("odd") / "videos"
    make_video(root / "a.mp4", size="96x72", rate=10, duration=0.5)
    make_video(root / "b.mp4", size="96x72", rate=10, duration=0.5, source="mandelbrot")
    os.symlink("loop.mp4", root / "loop.mp4")
    os.symlink("gone.mp4", root / "broken.mp4")
    (root / "folder.mp4").mkdir()
    return root


ODD_REASONS = {
    "loop.mp4": "symlink loop",
    "broken.mp4": "broken symlink",
    "folder.mp4": "is a directory",
}


def test_listings_keep_odd_entries_with_their_reason(folder):
    listed = {path.name: unusable_reason(path) for path in list_videos(folder)}
    assert listed["a.mp4"] is None and listed["b.mp4"] is None
    for name, reason in ODD_REASONS.items():
        assert reason in listed[name]


def test_builder_reports_every_odd_entry(folder, tmp_path, capsys):
    code, out, err = run(["build-distortion-pairs", str(folder), "-o", str(tmp_path / "pairs"), *FAST], capsys)
    assert code == 0 and "Traceback" not in err
    skipped = {}
    for path in (tmp_path / "pairs").glob("skipped-*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            skipped[row["input"]] = row["reason"]
    assert set(skipped) == set(ODD_REASONS)
    for name, reason in ODD_REASONS.items():
        assert reason in skipped[name] and f"{name}: {skipped[name]}" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["build-distortion-pairs", "{tmp}/missing/", "-o", "{tmp}/out"], ["missing", "no such file or folder"]),
        (["build-distortion-pairs", "nonexist.mp4", "-o", "{tmp}/out"], ["nonexist.mp4", "no such file or folder"]),
        (["build-distortion-pairs", "{tmp}/loop.mp4", "-o", "{tmp}/out"], ["loop.mp4", "symlink loop"]),
        (["build-distortion-pairs", "{tmp}/x.mp4", "-o", "{tmp}/out"], ["x.mp4", "doesn't contain any data files"]),
        (["build-distortion-pairs", "{videos}", "-o", "{videos}/out"], ["must not be inside the input folder"]),
        (["build-distortion-pairs", "{videos}", "-o", "{tmp}/out", "--types", "blurr"], ["blurr", "did you mean gaussian_blur"]),
        (["build-distortion-pairs", "{videos}", "-o", "{tmp}/out", "--levels", "9"], ["--levels", "'9'", "1..4"]),
        (["build-distortion-pairs", "{videos}", "-o", "{tmp}/out", "--shard-index", "2", "--num-shards", "2"], ["shard index", "2 of 2"]),
        (["build-distortion-pairs", "{videos}", "-o", "{tmp}/out", "--num-shards", "0"], ["--num-shards", ">= 1"]),
        (["build-pseudo-pairs", "{videos}", "-o", "{tmp}/out", "--teachers", "foo"], ["unknown teacher 'foo'"]),
        (["build-pseudo-pairs", "{videos}", "-o", "{tmp}/out", "--teachers", "ranker:/nonexistent"], ["/nonexistent", "no such model folder"]),
        (["score", "--model", "/nonexistent", "{videos}/a.mp4"], ["--model", "/nonexistent", "no such model folder"]),
        (["score", "--model", "{tmp}", "--anchors", "{tmp}/one.json", "{videos}/a.mp4"], ["one.json", "1 anchor(s)", "at least 2"]),
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_cause(argv, words, folder, tmp_path, capsys):
    os.symlink("loop.mp4", tmp_path / "loop.mp4")
    (tmp_path / "x.mp4").mkdir()
    (tmp_path / "one.json").write_text(json.dumps({"anchors": [{"video": "a.mp4", "score": 50}]}))
    argv = [arg.format(tmp=tmp_path, videos=folder) for arg in argv]
    started = time.monotonic()
    code, out, err = run(argv, capsys)
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ssvqa {argv[0]}: error:") and all(word in last for word in words), last
    assert time.monotonic() - started < 10  # never a wait for the Hub (it took ~25 s offline)


def test_nothing_usable_exits_1_without_suggesting_load_dataset(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "empty.mp4").write_bytes(b"")
    os.symlink("loop.mp4", videos / "loop.mp4")
    for command in ("build-distortion-pairs", "build-pseudo-pairs"):
        code, out, err = run([command, str(videos), "-o", str(tmp_path / command)], capsys)
        assert code == 1 and "Traceback" not in err
        assert "no pairs were made" in out and "load_dataset" not in out
        assert "empty.mp4: 0-byte file" in out and "loop.mp4: symlink loop" in out


def test_score_names_odd_entries_with_their_reason(folder, tmp_path, capsys):
    from ssvqa.scorer import QualityScorer
    from ssvqa.testing import save_tiny_model

    model = save_tiny_model(tmp_path / "model")
    QualityScorer.from_pretrained(model, [(folder / "a.mp4", 20.0), (folder / "b.mp4", 80.0)]).save_anchors(model)
    output = tmp_path / "scores.json"
    code, out, err = run(["score", "--model", str(model), str(folder), "--no-progress", "-o", str(output)], capsys)
    assert code == 0 and "Traceback" not in err
    errors = {Path(path).name: reason for path, reason in json.loads(output.read_text())["errors"].items()}
    assert set(errors) == set(ODD_REASONS)
    for name, reason in ODD_REASONS.items():
        assert reason in errors[name]


@pytest.mark.parametrize("num_proc", [1, 2])
def test_ctrl_c_ends_in_one_line_and_exit_130_then_the_rerun_resumes(tmp_path, num_proc):
    from conftest import default_sigint, make_video

    folder = tmp_path / "videos"  # four sources: when the first is done, one has not even started
    for i, source in enumerate(["testsrc2", "mandelbrot", "smptebars", "rgbtestsrc"]):
        make_video(folder / f"{i}.mp4", size="96x72", rate=10, duration=0.5, source=source)
    out = tmp_path / "pairs"
    command = [sys.executable, "-m", "dataset_builders.distortion_pairs", str(folder), "-o", str(out), *FAST,
               "--num-proc", str(num_proc)]
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the group (workers, ffmpeg),
    # with SIGINT at its default as in a terminal.
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=default_sigint)
    done = out / ".work" / "done"
    deadline = time.monotonic() + 120
    while not (done.is_dir() and any(done.glob("*.json"))):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err and "interrupted; rerun the same command to resume" in err
    finished = len(list(done.glob("*.json")))
    assert finished < 4
    code = cli_main(["build-distortion-pairs", str(folder), "-o", str(out), *FAST])
    assert code == 0 and len(list(done.glob("*.json"))) == 4
