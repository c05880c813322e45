"""VideoSampling: one contract from training to relabelling and scoring, read from the saved model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import pytest

import ssvqa.modeling
import ssvqa.video
from ssvqa.cli import main as cli_main
from ssvqa.modeling import load_ranker
from ssvqa.relabel import relabel_with_ranker
from ssvqa.sampling import SAMPLING_FILE, VideoSampling, resolve_sampling
from ssvqa.scorer import QualityScorer
from ssvqa.testing import save_tiny_model
from ssvqa.trainer import RankConfig, RankTrainer

# 1-second clips: 3 frames at 3 fps, where the default samples 8 frames by count.
SAMPLING = dict(fps=3.0, max_frames=16, max_pixels=56 * 56)


class DecodeLog:
    """Records, per video (SHA-256 of its bytes), the frame times asked of the decoder and the frame
    size it returned, by wrapping ssvqa.video's torchcodec decoder."""

    def __init__(self, monkeypatch):
        self.seen: dict[str, tuple] = {}
        real_open, real_resize = ssvqa.video.open_decoder, ssvqa.video.resize_frames
        log = self

        class Spy:
            def __init__(self, decoder, key):
                self.decoder, self.key, self.metadata = decoder, key, decoder.metadata

            def get_frames_played_at(self, times):
                log.current = (self.key, ("times", tuple(round(t, 6) for t in times)))
                return self.decoder.get_frames_played_at(times)

            def get_frames_at(self, indices):
                log.current = (self.key, ("indices", tuple(indices)))
                return self.decoder.get_frames_at(indices)

        def spy_open(source, num_threads=1, name=None):
            data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
            return Spy(real_open(source, num_threads, name), hashlib.sha256(data).hexdigest())

        def spy_resize(frames, max_pixels, multiple=1):
            out = real_resize(frames, max_pixels, multiple)
            key, asked = self.current
            self.seen[key] = (asked, tuple(out.shape))
            return out

        monkeypatch.setattr(ssvqa.video, "open_decoder", spy_open)
        monkeypatch.setattr(ssvqa.video, "resize_frames", spy_resize)


@pytest.fixture(scope="module")
def trained(pair_dataset_dir, tmp_path_factory):
    """A tiny ranker trained two steps with fps sampling, saved with a checkpoint; and its pairs."""
    root = tmp_path_factory.mktemp("sampling")
    pairs = datasets.load_dataset(str(pair_dataset_dir))["train"].cast_column("video_a", datasets.Video(decode=False))
    pairs = pairs.cast_column("video_b", datasets.Video(decode=False)).select(range(6))
    args = RankConfig(
        output_dir=str(root / "ranker"), per_device_train_batch_size=3, max_steps=2, save_strategy="steps", save_steps=2,
        use_cpu=True, seed=0, learning_rate=1e-3, **SAMPLING,
    )
    trainer = RankTrainer(model=str(save_tiny_model(root / "base")), args=args, train_dataset=pairs)
    mp = pytest.MonkeyPatch()
    log = DecodeLog(mp)
    trainer.train()
    trainer.save_model()
    mp.undo()
    return {"root": root, "model": Path(args.output_dir), "pairs": pairs, "train_decodes": dict(log.seen)}


def test_training_saves_its_sampling_with_the_model_and_checkpoints(trained):
    saved = VideoSampling.from_pretrained(trained["model"])
    assert saved == VideoSampling(**SAMPLING, frame_multiple=28)
    assert VideoSampling.from_pretrained(trained["model"] / "checkpoint-2") == saved
    assert "3 fps" in (trained["model"] / "README.md").read_text()


def test_relabelling_and_scoring_decode_what_training_decoded(trained, tmp_path, monkeypatch):
    train = trained["train_decodes"]
    assert train and all(asked[0] == "times" and len(asked[1]) == 3 for asked, _ in train.values())

    model, processor = load_ranker(trained["model"])
    log = DecodeLog(monkeypatch)
    relabel_with_ranker(trained["pairs"], model, processor, round=1, batch_size=4)
    relabelled = dict(log.seen)
    assert set(train) <= set(relabelled)
    assert {key: relabelled[key] for key in train} == train

    # The scorer reads the same sampling from the saved folder: decode the training videos as files.
    files = []
    for row in trained["pairs"]:
        for video in (row["video_a"], row["video_b"]):
            path = tmp_path / f"{hashlib.sha256(video['bytes']).hexdigest()[:16]}.mp4"
            path.write_bytes(video["bytes"])
            files.append(path)
    files = sorted(set(files))
    log.seen.clear()
    scorer = QualityScorer.from_pretrained(trained["model"], [(files[0], 10.0), (files[1], 90.0)], batch_size=4)
    scorer.score(files[2:])
    scored = {key: value for key, value in log.seen.items() if key in train}
    assert scored and all(scored[key] == train[key] for key in scored)


def test_score_command_uses_the_models_sampling_and_keeps_the_anchor_block(trained, tmp_path, capsys, monkeypatch):
    model = tmp_path / "ranker"
    model.mkdir()
    for item in trained["model"].iterdir():
        if item.is_file():
            (model / item.name).write_bytes(item.read_bytes())
    videos = []
    for i, row in enumerate(trained["pairs"].select(range(3))):
        videos.append(tmp_path / f"v{i}.mp4")
        videos[-1].write_bytes(row["video_b"]["bytes"])
    QualityScorer.from_pretrained(model, [(videos[0], 20.0), (videos[1], 80.0)]).save_anchors(model)
    assert json.loads((model / "anchors.json").read_text())["settings"]["video_sampling"]["fps"] == 3.0

    calls = []
    real = ssvqa.modeling.compare
    monkeypatch.setattr(ssvqa.modeling, "compare", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    with _no_warnings():
        assert cli_main(["score", "--model", str(model), "--no-progress", str(videos[2])]) == 0
    assert sum(calls) == 2  # one video against two anchors; the 2 anchor-block comparisons are not redone
    assert "(2 comparisons)" in capsys.readouterr().err

    # An explicit flag wins, says so once, and the block made under other settings is recomputed.
    with pytest.warns(UserWarning, match="num_frames=4") as caught:
        scorer = QualityScorer.from_pretrained(model, num_frames=4)
    assert scorer.sampling.num_frames == 4 and scorer.sampling.fps is None and scorer.comparisons == 2
    assert sum("trained" in str(w.message) for w in caught) == 1


def test_resolve_sampling_overrides_and_defaults():
    saved = VideoSampling(fps=1.0, max_pixels=448 * 448)
    assert resolve_sampling(saved) == saved
    with pytest.warns(UserWarning, match="max_pixels=12544"):
        assert resolve_sampling(saved, max_pixels=112 * 112).max_pixels == 112 * 112
    assert resolve_sampling(None, num_frames=4) == VideoSampling(num_frames=4)
    with pytest.raises(ValueError, match="mode"):
        VideoSampling(mode="fragments")
    with pytest.raises(ValueError, match="unknown video sampling field"):
        VideoSampling.from_dict({"frames": 8})


def _no_warnings():
    import warnings

    class Guard:
        def __enter__(self):
            self.catcher = warnings.catch_warnings(record=True)
            self.caught = self.catcher.__enter__()
            warnings.simplefilter("always")
            return self

        def __exit__(self, *exc):
            self.catcher.__exit__(*exc)
            ours = [w for w in self.caught if "recomput" in str(w.message) or "trained with" in str(w.message)]
            assert not ours, [str(w.message) for w in ours]

    return Guard()
