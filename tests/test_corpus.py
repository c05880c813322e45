"""The synthetic corpus: varied, seeded, idempotent clips, and its command line."""

from __future__ import annotations

import argparse

import pytest
import torch

from ssvqa import corpus
from ssvqa.commands.make_corpus import add_arguments, main
from ssvqa.corpus import KINDS, clip_sizes, make_corpus, plan_corpus
from ssvqa.video import decode_frames, probe


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """One clip of every kind, small and short (made once for the module)."""
    root = tmp_path_factory.mktemp("corpus")
    return make_corpus(root, num_clips=len(KINDS), seed=0, duration=1.0, size=(160, 120), fps=10)


def test_every_kind_is_made_once_with_the_asked_length(clips):
    assert len(clips) == len(KINDS)
    assert sorted(p.name.split("-")[1] for p in clips) == sorted(KINDS)
    for path in clips:
        info = probe(path)
        assert info.num_frames == 10 and round(info.fps) == 10, path.name
        assert info.width % 2 == 0 and info.height % 2 == 0 and info.pixel_format == "yuv420p"


def test_clips_differ_in_content_and_most_move(clips):
    means, moving = [], 0
    for path in clips:
        frames = decode_frames(path, num_frames=10).float()
        means.append(frames.mean(dim=(0, 2, 3)))  # mean colour per channel
        moving += int((frames[1:] - frames[:-1]).abs().mean() > 0.5)
    # no two clips share a mean colour: each is a separate content
    distances = torch.cdist(torch.stack(means), torch.stack(means))
    assert (distances + torch.eye(len(clips)) * 1e3).min() > 1.0
    assert moving == len(clips)


def test_sizes_vary_in_aspect_and_include_a_portrait():
    recipes = plan_corpus(num_clips=9, seed=3, size=(320, 240))
    sizes = [r.size for r in recipes]
    assert sizes[0] == (320, 240) and sizes[1] == (240, 320)
    assert len({round(w / h, 2) for w, h in sizes}) >= 3
    assert all(w % 2 == 0 and h % 2 == 0 and min(w, h) >= 64 for w, h in sizes)
    assert clip_sizes(3, [(64, 64), (128, 96)], None) == [(64, 64), (128, 96), (64, 64)]


def test_seed_decides_everything_and_more_clips_keep_the_first_ones():
    first = plan_corpus(num_clips=5, seed=1)
    assert first == plan_corpus(num_clips=5, seed=1)
    assert plan_corpus(num_clips=7, seed=1)[:5] == first
    other = plan_corpus(num_clips=5, seed=2)
    assert [r.file_name for r in other] != [r.file_name for r in first]


def test_same_seed_gives_identical_bytes_and_existing_clips_are_not_remade(tmp_path):
    made = make_corpus(tmp_path / "a", num_clips=2, seed=4, duration=0.5, size=(96, 64), fps=8)
    again = make_corpus(tmp_path / "b", num_clips=2, seed=4, duration=0.5, size=(96, 64), fps=8)
    assert [p.read_bytes() for p in made] == [p.read_bytes() for p in again]
    stamps = [p.stat().st_mtime_ns for p in made]
    made[1].unlink()  # as if interrupted
    resumed = make_corpus(tmp_path / "a", num_clips=2, seed=4, duration=0.5, size=(96, 64), fps=8)
    assert resumed == made and made[0].stat().st_mtime_ns == stamps[0] and made[1].exists()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in made)  # no temp files


def test_text_falls_back_to_moving_boxes_without_a_font(tmp_path, monkeypatch):
    # Simulates a machine with no font file (the only thing replaced is our own font lookup).
    monkeypatch.setattr(corpus, "find_font", lambda: None)
    recipe = next(r for r in plan_corpus(num_clips=len(KINDS), seed=0, size=(160, 120), fps=10, duration=0.5)
                  if r.kind == "text")
    assert "drawtext" not in recipe.filters and "overlay" in recipe.source
    (path,) = [p for p in make_corpus(tmp_path, num_clips=len(KINDS), seed=0, size=(160, 120), fps=10, duration=0.5)
               if "-text-" in p.name]
    assert probe(path).num_frames == 5


def test_font_lookup_returns_a_usable_path_or_none():
    font = corpus.find_font()
    assert font is None or (font.endswith((".ttf", ".otf", ".ttc")) and ":" not in font)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        plan_corpus(num_clips=0)
    with pytest.raises(ValueError):
        plan_corpus(duration=0)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["out", "--size", "big"])


def test_command_line_makes_the_corpus(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "c"), "--num-clips", "2", "--seed", "5", "--duration", "0.5",
                              "--size", "128x96,96x128", "--fps", "8"])
    assert main(args) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2
    assert [(probe(p).width, probe(p).height) for p in printed] == [(128, 96), (96, 128)]


def test_graded_pool_hides_a_known_quality_and_is_made_once(clips, tmp_path):
    from ssvqa.corpus import make_graded_pool, read_quality

    table = make_graded_pool(clips[:3], tmp_path / "pool", types=["exposure"], versions_per_source=3, seed=0)
    quality = read_quality(table)
    assert len(quality) == 9 and set(quality.values()) <= {100.0, 75.0, 50.0, 25.0, 0.0}
    lines = table.read_text().splitlines()
    assert lines[0] == "name,mos,distortion,level,content"
    by_content: dict[str, list[tuple[str, float]]] = {}
    for line in lines[1:]:
        name, mos, distortion, level, content = line.split(",")
        assert float(mos) == 100 * (1 - int(level) / 4) and distortion in ("exposure", "pristine")
        assert "exposure" not in name and "pristine" not in name  # the file name gives nothing away
        by_content.setdefault(content, []).append((name, float(mos)))
    assert len(by_content) == 3 and all(len({q for _, q in v}) == 3 for v in by_content.values())  # 3 distinct levels each
    # the hidden quality is real: within one content, lower quality = darker frames
    for versions in by_content.values():
        brightness = {n: decode_frames(tmp_path / "pool" / n, num_frames=2).float().mean().item() for n, _ in versions}
        ordered = [brightness[n] for n, _ in sorted(versions, key=lambda v: v[1])]
        assert ordered == sorted(ordered)
    assert not (tmp_path / "pool" / ".work").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "pool").iterdir()}
    assert make_graded_pool(clips[:3], tmp_path / "pool", types=["exposure"], versions_per_source=3, seed=0) == table
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "pool").iterdir()} == stamps
    with pytest.raises(ValueError, match="versions_per_source"):
        make_graded_pool(clips[:1], tmp_path / "bad", types=["exposure"], versions_per_source=6)


def test_graded_pool_with_chosen_levels_gives_one_version_per_content(clips, tmp_path):
    from ssvqa.corpus import make_graded_pool

    table = make_graded_pool(clips[:3], tmp_path / "anchors", types=["exposure", "noise"], levels=[0, 2, 4], seed=0)
    rows = [line.split(",") for line in table.read_text().splitlines()[1:]]
    assert sorted(int(level) for _, _, _, level, _ in rows) == [0, 2, 4]
    assert len({content for *_, content in rows}) == 3
    with pytest.raises(ValueError, match="one level 0-4 per source"):
        make_graded_pool(clips[:2], tmp_path / "bad", types=["exposure"], levels=[0])
