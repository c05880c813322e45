"""Shared fixtures: every video a test needs is made here with ffmpeg's synthetic sources."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

# `load_dataset(folder)` caches by folder name and file names: two test folders both called
# "dataset" could be served each other's rows from a shared cache. Each test process gets its own.
if "HF_DATASETS_CACHE" not in os.environ:
    os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="ssvqa-test-datasets-")
    atexit.register(shutil.rmtree, os.environ["HF_DATASETS_CACHE"], True)  # hundreds of MB per process otherwise

import ssvqa  # noqa: F401  (installs the torchvision shim before any test imports transformers)


def make_video(
    path: str | Path,
    *,
    size: str = "160x120",
    rate: float = 10,
    duration: float = 1.0,
    source: str = "testsrc2",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frames: int | None = None,
    extra: list[str] | None = None,
) -> Path:
    """Write a small synthetic video with ffmpeg (argument list, no shell) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    length = ["-frames:v", str(frames)] if frames else ["-t", str(duration)]
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}",
        *length, "-c:v", codec, "-pix_fmt", pix_fmt, *(extra or []), str(path),
    ]
    if codec == "libx265":
        cmd[-1:-1] = ["-x265-params", "log-level=none"]
    subprocess.run(cmd, check=True)
    return path


def default_sigint() -> None:
    """``preexec_fn`` for a child that must see Ctrl-C as a terminal would: SIGINT at its default,
    whatever the test process inherited (a child of a process that ignores SIGINT ignores it too,
    and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A free TCP port for an `accelerate launch` rendezvous: tests running in parallel on the
    default port 29500 would join each other's process group or hang waiting for it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def video_factory(tmp_path):
    """``video_factory("name.mp4", size="192x144", rate=10, ...)`` -> Path under tmp_path."""

    def factory(name: str, **kwargs) -> Path:
        return make_video(tmp_path / name, **kwargs)

    return factory


@pytest.fixture(scope="session")
def odd_videos(tmp_path_factory) -> dict[str, Path]:
    """One of each odd or bad input the brief names, made once per test session."""
    root = tmp_path_factory.mktemp("odd")
    videos = {
        "landscape_720p30": make_video(root / "landscape.mp4", size="1280x720", rate=30, duration=1),
        "portrait": make_video(root / "portrait.mp4", size="406x720", rate=30, duration=1, source="mandelbrot"),
        "small_10fps": make_video(root / "small.mp4", size="192x144", rate=10, duration=1, source="smptebars"),
        "one_frame": make_video(root / "one.mp4", size="192x144", rate=10, frames=1),
        "ten_bit": make_video(root / "tenbit.mp4", size="320x240", rate=25, duration=1, codec="libx265", pix_fmt="yuv420p10le"),
        "vfr": make_video(
            root / "vfr.mkv", size="320x240", rate=30, duration=1,
            extra=["-vf", "setpts='if(lt(N,15),N/30/TB,(15+(N-15)*3)/30/TB)'", "-fps_mode", "vfr"],
        ),
    }
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    videos["empty"] = empty
    text = root / "notavideo.mp4"
    text.write_text("this is not a video\n")
    videos["not_video"] = text
    whole = videos["landscape_720p30"].read_bytes()
    truncated = root / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 3])
    videos["truncated"] = truncated
    audio = root / "audio.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=d=1", str(audio)], check=True)
    videos["audio_only"] = audio
    return videos


@pytest.fixture(scope="session")
def pair_dataset_dir(tmp_path_factory) -> Path:
    """A real distortion-pair dataset folder made by the builder from four small synthetic sources."""
    from ssvqa.pairs.distortion import build_distortion_pairs

    root = tmp_path_factory.mktemp("pairs")
    sources = [
        make_video(root / "src" / "bars.mp4", size="160x120", rate=10, source="smptebars"),
        make_video(root / "src" / "fractal.mp4", size="160x120", rate=10, source="mandelbrot"),
        make_video(root / "src" / "pattern.mp4", size="160x120", rate=10, source="testsrc2"),
        make_video(root / "src" / "portrait.mp4", size="120x160", rate=10, source="rgbtestsrc"),
    ]
    out = root / "dataset"
    build_distortion_pairs(
        sources, out, types=["gaussian_blur", "noise", "downscale"], types_per_source=2, test_fraction=0.25, seed=0,
        max_pixels=160 * 120,
    )
    return out
