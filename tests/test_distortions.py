"""The distortion simulator: honest severity ladders, odd inputs, determinism, safe failure.

Every video here is made by ffmpeg's synthetic sources and is tiny (160x120, 2 s at 10 fps)
except the odd inputs of ``conftest.odd_videos``. Nothing is mocked; one test *spies* on
``subprocess.run`` (records the calls and runs them) to count ffmpeg processes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from ssvqa import distortions
from ssvqa.distortions import (
    CATALOGUE,
    FAMILIES,
    Variant,
    ladder,
    probe_source,
    reference_size,
    render_variants,
    ssim_against,
    ssim_many,
)
from ssvqa.errors import VideoError
from ssvqa.video import decode_frames, probe

# Visually different content: a moving test pattern with text and sharp edges, a zooming
# fractal, a coloured cellular automaton (hard edges, mostly flat areas), a smooth gradient.
HONESTY_SOURCES = {
    "testsrc2": "testsrc2=size=160x120:rate=10",
    "mandelbrot": "mandelbrot=size=160x120:rate=10:maxiter=256:start_scale=3:end_scale=0.5",
    "life": "life=size=160x120:rate=10:seed=3:ratio=0.3:mold=10:life_color=#ffdd33:death_color=#2040a0:mold_color=#206020",
    # explicit colours and endpoints: the gradients source draws random ones otherwise, even with a seed
    "gradient": "gradients=size=160x120:rate=10:speed=0.05:n=3:c0=0xff8020:c1=0x2040c0:c2=0x30d060:x0=10:y0=20:x1=150:y1=100",
}
GRADED = [name for name, d in CATALOGUE.items() if d.family in ("spatial", "compression", "temporal")]


def synthetic(path: Path, spec: str, duration: float = 2.0) -> Path:
    """Encode a lavfi source nearly losslessly (so the test measures our distortions, not this)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", spec, "-t", str(duration),
        "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


@pytest.fixture(scope="module")
def ladders_ssim(tmp_path_factory):
    """source name -> {distortion name: [SSIM of level 1..n vs the reference]} (made on first use)."""
    root = tmp_path_factory.mktemp("honesty")
    cache: dict[str, dict[str, list[float]]] = {}

    def measure(source: str) -> dict[str, list[float]]:
        if source not in cache:
            video = synthetic(root / f"{source}.mp4", HONESTY_SOURCES[source])
            variants = [Variant(())] + [v for name in GRADED for v in ladder(name)]
            paths = render_variants(video, variants, root / source)
            scores = iter(ssim_many(paths[0], paths[1:]))
            cache[source] = {name: [next(scores) for _ in CATALOGUE[name].levels] for name in GRADED}
        return cache[source]

    return measure


def test_catalogue_covers_three_families_with_ordered_ladders():
    assert len(CATALOGUE) >= 10
    assert {d.family for d in CATALOGUE.values()} == set(FAMILIES)
    for name, distortion in CATALOGUE.items():
        assert distortion.name == name and distortion.family in FAMILIES
        assert len(distortion.levels) >= 4 and distortion.description
        assert [v.name for v in ladder(name)] == [f"{name}-{i}" for i in range(1, len(distortion.levels) + 1)]
    codecs = {name for name, d in CATALOGUE.items() if d.family == "compression"}
    assert {"h264", "h265", "vp9", "av1"} <= codecs


def test_variant_names_parse_back_and_report_severity():
    composed = Variant((("h264", 2), ("noise", 1)))
    assert composed.name == "h264-2+noise-1"
    assert Variant.parse(composed.name) == composed
    assert Variant.parse("pristine") == Variant(()) and Variant(()).is_pristine
    assert composed.severity("noise") == 1 and composed.severity("h264") == 2 and composed.severity("vp9") == 0
    assert composed.families == ("compression", "spatial")
    for bad in [(("h264", 0),), (("h264", 99),), (("warp", 1),)]:
        with pytest.raises(ValueError):
            Variant(bad)
    with pytest.raises(ValueError):
        Variant.parse("blur")


@pytest.mark.parametrize("distortion", GRADED)
@pytest.mark.parametrize("source", list(HONESTY_SOURCES))
def test_a_stronger_level_never_has_higher_ssim(ladders_ssim, source, distortion):
    scores = ladders_ssim(source)[distortion]
    assert all(0.0 < s < 1.0 for s in scores), scores
    for level, (milder, stronger) in enumerate(zip(scores, scores[1:]), start=1):
        assert stronger <= milder, f"{distortion} on {source}: level {level + 1} SSIM {stronger} > level {level} {milder}"
    assert scores[-1] < scores[0], f"{distortion} on {source}: the ladder changes nothing ({scores})"


def test_reference_keeps_aspect_and_fits_the_budget(tmp_path):
    video = synthetic(tmp_path / "wide.mp4", "testsrc2=size=320x180:rate=10", duration=0.5)
    (small,) = render_variants(video, [Variant(())], tmp_path / "small", max_pixels=160 * 100)
    info = probe(small)
    assert (info.width, info.height) == reference_size(320, 180, 160 * 100) == (168, 94)
    assert info.num_frames == 5 and info.pixel_format == "yuv420p"
    # Without a budget the near-lossless reference is almost the source itself.
    (full,) = render_variants(video, [Variant(())], tmp_path / "full")
    assert (probe(full).width, probe(full).height) == (320, 180)
    assert ssim_against(video, full) > 0.995


def test_temporal_variants_hold_frames_and_keep_frame_count(tmp_path):
    video = synthetic(tmp_path / "moving.mp4", HONESTY_SOURCES["testsrc2"])
    variants = [Variant(()), Variant((("frame_rate", 1),)), Variant((("freeze", 4),))]
    reference, halved, frozen = render_variants(video, variants, tmp_path / "out")
    for path in (halved, frozen):
        assert probe(path).num_frames == probe(reference).num_frames == 20
        assert abs(probe(path).duration - probe(reference).duration) < 0.05

    def change(path):  # mean absolute change between consecutive frames
        frames = decode_frames(path, num_frames=20).float()
        return (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))

    moving, halved_change, frozen_change = change(reference), change(halved), change(frozen)
    assert (moving > 1.0).all()
    # frame_rate-1 halves the rate: frames 2k and 2k+1 are the same picture.
    assert (halved_change[0::2] < 0.5).all() and (halved_change[1::2] > 1.0).all()
    # freeze-4 shows frames 0-1 of every 10 and holds frame 1 over the other 8.
    assert (frozen_change[1:9] < 0.5).all() and (frozen_change[11:19] < 0.5).all()
    assert frozen_change[0] > 1.0 and frozen_change[9] > 1.0 and frozen_change[10] > 1.0


def test_noise_is_deterministic_for_a_seed(tmp_path):
    video = synthetic(tmp_path / "clip.mp4", HONESTY_SOURCES["gradient"], duration=0.5)
    noisy = [Variant((("noise", 2),))]
    (first,) = render_variants(video, noisy, tmp_path / "a", seed=7)
    (again,) = render_variants(video, noisy, tmp_path / "b", seed=7)
    (other,) = render_variants(video, noisy, tmp_path / "c", seed=8)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_composed_variants_render_and_degrade_more_than_their_parts(tmp_path):
    video = synthetic(tmp_path / "clip.mp4", HONESTY_SOURCES["mandelbrot"], duration=1.0)
    parts = [Variant((("h264", 3),)), Variant((("noise", 2),)), Variant((("gaussian_blur", 2),)), Variant((("h265", 2),))]
    composed = [Variant((("h264", 3), ("noise", 2))), Variant((("gaussian_blur", 2), ("h265", 2)))]
    paths = render_variants(video, [Variant(()), *parts, *composed], tmp_path / "out")
    assert [p.name for p in paths[-2:]] == ["h264-3+noise-2.mp4", "gaussian_blur-2+h265-2.mp4"]
    scores = dict(zip([v.name for v in parts + composed], ssim_many(paths[0], paths[1:])))
    assert scores["h264-3+noise-2"] < min(scores["h264-3"], scores["noise-2"])
    assert scores["gaussian_blur-2+h265-2"] < min(scores["gaussian_blur-2"], scores["h265-2"])
    for path in paths:
        assert probe(path).num_frames == 10
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no leftovers


def test_one_ffmpeg_process_renders_every_single_step_variant(tmp_path, monkeypatch):
    video = synthetic(tmp_path / "clip.mp4", HONESTY_SOURCES["testsrc2"], duration=0.5)
    calls = []
    real_run = subprocess.run

    def spy(cmd, *args, **kwargs):  # records, then runs the real command
        calls.append(cmd[0])
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(distortions.subprocess, "run", spy)
    variants = [Variant(()), *ladder("gaussian_blur"), *ladder("h264"), Variant((("av1", 1),)), Variant((("freeze", 1),))]
    paths = render_variants(video, variants, tmp_path / "out")
    assert all(p.exists() for p in paths)
    assert calls.count("ffmpeg") == 1 and calls.count("ffprobe") == 1


ODD = ["landscape_720p30", "portrait", "small_10fps", "one_frame", "ten_bit", "vfr"]


@pytest.mark.parametrize("name", ODD)
def test_odd_sources_render_every_type(odd_videos, tmp_path, name):
    strongest = [Variant(((d, CATALOGUE[d].num_levels),)) for d in CATALOGUE]
    composed = Variant((("h264", 2), ("sharpen", 1)))
    budget = 160 * 120 if name == "landscape_720p30" else None  # keep the big one cheap
    paths = render_variants(odd_videos[name], [Variant(()), *strongest, composed], tmp_path, max_pixels=budget)
    reference = probe(paths[0])
    assert reference.width % 2 == 0 and reference.height % 2 == 0 and reference.pixel_format == "yuv420p"
    assert reference.portrait == probe(odd_videos[name]).portrait
    for path in paths:
        info = probe(path)
        assert (info.width, info.height, info.num_frames) == (reference.width, reference.height, reference.num_frames), path.name
        assert decode_frames(path, num_frames=2).dtype == torch.uint8


def test_odd_width_is_made_even(video_factory, tmp_path):
    video = video_factory("odd.mp4", size="201x151", pix_fmt="yuv444p", duration=0.5)
    paths = render_variants(video, [Variant(()), Variant((("downscale", 4),)), Variant((("vp9", 1),))], tmp_path / "out")
    assert {(probe(p).width, probe(p).height) for p in paths} == {(200, 150)}


@pytest.mark.parametrize("name,reason", [("empty", "0-byte"), ("not_video", "not a readable video"),
                                         ("truncated", "not a readable video"), ("audio_only", "no video stream")])
def test_bad_source_raises_naming_the_file_and_leaves_nothing(odd_videos, tmp_path, name, reason):
    with pytest.raises(VideoError) as caught:
        render_variants(odd_videos[name], [Variant(()), *ladder("h264")], tmp_path / "out")
    assert str(odd_videos[name]) in str(caught.value) and reason in caught.value.reason
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_failure_during_rendering_leaves_no_files(tmp_path):
    # A file whose header is intact but whose frame data is zeroed: ffprobe reads it, no frame decodes.
    video = synthetic(tmp_path / "clip.mp4", HONESTY_SOURCES["testsrc2"], duration=1.0)
    data = bytearray(video.read_bytes())
    start = data.index(b"mdat") + 4
    end = data.index(b"moov") - 4
    data[start:end] = bytes(end - start)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    probe_source(broken)  # the header alone looks fine
    out = tmp_path / "out"
    with pytest.raises(VideoError) as caught:
        render_variants(broken, [Variant(()), Variant((("h264", 1), ("noise", 1))), *ladder("noise")], out)
    assert str(broken) in str(caught.value)
    assert not any(out.iterdir())  # neither final names nor temporary files


def test_existing_outputs_are_kept_unless_overwrite(tmp_path):
    video = synthetic(tmp_path / "clip.mp4", HONESTY_SOURCES["testsrc2"], duration=0.5)
    variants = [Variant(()), Variant((("contrast", 2),))]
    first = render_variants(video, variants, tmp_path / "out")
    stamps = [p.stat().st_mtime_ns for p in first]
    first[1].unlink()  # as if a run had been interrupted before this one was finished
    again = render_variants(video, variants, tmp_path / "out")
    assert again == first and again[0].stat().st_mtime_ns == stamps[0] and again[1].exists()
    render_variants(video, variants[:1], tmp_path / "out", overwrite=True)
    assert first[0].stat().st_mtime_ns != stamps[0]


def test_ssim_is_one_for_identical_videos_and_scales_other_sizes(tmp_path):
    video = synthetic(tmp_path / "clip.mp4", HONESTY_SOURCES["life"], duration=0.5)
    small = synthetic(tmp_path / "small.mp4", HONESTY_SOURCES["life"].replace("160x120", "80x60"), duration=0.5)
    assert ssim_against(video, video) == pytest.approx(1.0)
    assert 0.0 < ssim_against(video, small) < 0.99
    with pytest.raises(VideoError, match="0-byte"):
        empty = tmp_path / "empty.mp4"
        empty.write_bytes(b"")
        ssim_against(video, empty)


# Variable frame rate: 15 frames at 30 fps, then one frame every 0.1 s. The reference repeats each
# of the later frames 3 times (constant 30 fps); a frame-rate level that dropped every 3rd
# *reference* frame lost nothing there, and scored a better SSIM than a milder level (issue 9).
VFR_SETPTS = "setpts='if(lt(N,15),N/30/TB,(15+(N-15)*3)/30/TB)'"


@pytest.mark.parametrize("content", ["testsrc2", "mandelbrot"])
def test_temporal_ladders_are_monotone_on_variable_frame_rate_sources(tmp_path, content):
    video = tmp_path / "vfr.mkv"
    subprocess.run([
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"{content}=size=160x120:rate=30",
        "-t", "2", "-vf", VFR_SETPTS, "-fps_mode", "vfr", "-c:v", "libx264", "-crf", "10", str(video),
    ], check=True)
    for name in ("frame_rate", "freeze"):
        paths = render_variants(video, [Variant(()), *ladder(name)], tmp_path / name)
        scores = ssim_many(paths[0], paths[1:])
        assert all(a > b for a, b in zip(scores, scores[1:])), (name, scores)
        assert {probe(path).num_frames for path in paths} == {probe(paths[0]).num_frames}, name


def test_small_frames_get_av1_from_libaom_and_h265_is_refused_naming_codec_and_size(tmp_path):
    video = synthetic(tmp_path / "small.mp4", "testsrc2=size=48x48:rate=10", duration=1.0)
    paths = render_variants(video, [Variant(()), *ladder("av1")], tmp_path / "av1")
    scores = ssim_many(paths[0], paths[1:])
    assert probe(paths[1]).codec == "av1" and (probe(paths[1]).width, probe(paths[1]).height) == (48, 48)
    assert all(a >= b for a, b in zip(scores, scores[1:])) and scores[-1] < 0.999, scores
    with pytest.raises(VideoError, match=r"h265 \(libx265\) needs frames of at least 64x64 pixels; this source renders at 48x48"):
        render_variants(video, [Variant(()), Variant((("h265", 1),))], tmp_path / "h265")
    assert not list((tmp_path / "h265").glob("*.mp4"))
