"""Self-improvement rounds (recipes/round.py, ssvqa/rounds.py) on the tiny offline model.

Rounds 0 and 1 run once for the module (generated data, a few training steps); the tests then
check what a user gets: artifacts that load back, a finished round that is left alone, Hub
publishing (the Hub's HTTP API is faked by tests/fake_hub.py, and only that), a push that fails
and is retried alone, a round killed during training that resumes from its checkpoint, and a
round under ``accelerate launch`` with two processes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "round.py"
TINY = ROOT / "recipes" / "tiny" / "round.yaml"
# Small enough for CI: a few clips, a few steps, the tiny model (the recipe uses the small one).
OVERRIDES = [
    "--corpus_clips", "4", "--pool_clips", "4", "--heldout_clips", "3", "--max_steps", "3", "--first_round_max_steps", "3",
    # 2 s clips: the content split is a hash of each clip's bytes, and these 4 put one content in the
    # test split at a quarter (with the recipe's 1 s clips none: no held-out pairs; its 160 clips at an eighth give about 20)
    "--clip_seconds", "2.0", "--test_fraction", "0.25",
    "--save_steps", "2", "--tiny_model", "qwen2_5_vl-tiny", "--max_eval_pairs", "8",
    "--per_device_train_batch_size", "2", "--logging_steps", "1", "--vision_warm_start_steps", "2",
    "--distortion_types", "exposure", "noise",
    "--real_ladder_types", "gaussian_blur", "exposure", "--real_ladder_clips", "carphone_pristine",
    "--relabel_when", "always",  # these tests are about relabelling; the gate has its own test
]


def parse(output_dir: Path, *extra: str):
    from trl import ModelConfig, TrlParser

    from ssvqa.demo import DemoArguments
    from ssvqa.rounds import RoundArguments
    from ssvqa.trainer import RankConfig

    parser = TrlParser((RoundArguments, DemoArguments, RankConfig, ModelConfig))
    return parser.parse_args_and_config(args=["--config", str(TINY), "--output_dir", str(output_dir), *OVERRIDES, *extra])


def run(output_dir: Path, *extra: str) -> dict:
    """What ``recipes/round.py`` does: the demo's world, then the round."""
    from ssvqa.demo import prepare_world
    from ssvqa.rounds import run_round

    script_args, demo_args, training_args, model_args = parse(output_dir, *extra)
    prepare_world(demo_args, script_args, training_args)
    return run_round(script_args, training_args, model_args)


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def rounds(tmp_path_factory):
    out = tmp_path_factory.mktemp("rounds") / "run"
    first = run(out, "--round", "0")
    second = run(out, "--round", "1")
    yield out, first, second
    shutil.rmtree(out.parent, ignore_errors=True)  # hundreds of MB of videos and models: freed when the module ends


def test_rounds_save_artifacts_that_load_back(rounds):
    import datasets
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ssvqa.pairs.dataset import load_pairs

    out, first, second = rounds
    assert not (out / ".cache").exists() and not (out / "round-1" / ".cache").exists()  # datasets caches: copies, freed
    for k, report in enumerate((first, second)):
        here = out / f"round-{k}"
        assert json.loads((here / "report.json").read_text()) == report
        model = AutoModelForImageTextToText.from_pretrained(here / "model")
        assert model.config.model_type == "qwen2_5_vl"
        AutoProcessor.from_pretrained(here / "model")
        card = (here / "model" / "README.md").read_text()
        assert f"Self-improvement round {k}" in card and "heldout_pair_accuracy" in card
        pairs = datasets.load_dataset(str(here / "dataset"), cache_dir=str(out / f"hf-cache-{k}"))
        assert set(pairs) == {"train", "test"} and len(pairs["train"]) == report["figures"]["train_pairs"]
        anchors = json.loads((here / "model" / "anchors.json").read_text())
        assert len(anchors["anchors"]) == 4  # one per anchor clip (the test's 4 training clips), levels spread
        assert report["figures"]["steps"] == 3 and 0 <= report["figures"]["heldout_pair_accuracy"] <= 1
        assert -1 <= report["figures"]["srcc"] <= 1 and 0 <= report["figures"]["label_agreement"] <= 1
        accuracy = report["figures"]["heldout_pair_accuracy_by_type"]  # the test's two trained types
        assert set(accuracy) == {"exposure", "noise"} and all(0 <= v <= 1 for v in accuracy.values())
        assert min(accuracy.values()) <= report["figures"]["heldout_pair_accuracy"] <= max(accuracy.values())
        by_type = report["figures"]["real_ladder_srcc_by_type"]
        assert set(by_type) == {"gaussian_blur", "exposure"} and all(-1 <= v <= 1 for v in by_type.values())
        assert report["figures"]["real_ladder_srcc"] == pytest.approx(sum(by_type.values()) / 2)
        assert not (here / "checkpoints").exists()  # a finished round keeps its model, not its checkpoints
    assert (out / "rounds.png").stat().st_size > 0

    # Round 1 trains on the same pairs; the teachers' pseudo pairs now carry the round-0 ranker's labels.
    before, after = load_pairs(out / "round-0" / "dataset"), load_pairs(out / "round-1" / "dataset")
    assert len(after["train"]) == len(before["train"])
    assert set(before["train"]["origin"]) == {"distortion", "pseudo"}
    assert set(after["train"]["origin"]) == {"distortion", "relabel"}
    relabelled = [json.loads(p) for o, p in zip(after["train"]["origin"], after["train"]["provenance"]) if o == "relabel"]
    assert all(p["round"] == 1 and p["previous_origin"] == "pseudo" and p["annotator"] == "ranker-round-0" for p in relabelled)
    assert second["lineage"]["started_from"].endswith("round-0/model")
    assert "round 1" in (out / "round-1" / "dataset" / "README.md").read_text()


def test_a_finished_round_is_left_alone(rounds, capsys):
    out, first, _ = rounds
    before = snapshot(out / "round-0")
    again = run(out, "--round", "0")
    assert again == first and snapshot(out / "round-0") == before
    printed = capsys.readouterr().out
    assert "round 0 is done" in printed
    assert "real ladder SRCC per type" in printed and f"gaussian_blur {first['figures']['real_ladder_srcc_by_type']['gaussian_blur']:.3f}" in printed


def test_a_round_needs_the_previous_one(tmp_path):
    with pytest.raises(SystemExit, match="round 1 is not finished"):
        run(tmp_path / "empty", "--round", "2")


@pytest.fixture
def fake_hub(monkeypatch):
    """The Hub's HTTP API, faked (tests/fake_hub.py); the real huggingface_hub client runs."""
    import huggingface_hub.constants
    from fake_hub import FakeHub

    with FakeHub() as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_round_secret_never_printed")
        yield hub


def test_a_failed_push_keeps_everything_and_is_retried_alone(rounds, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants
    from fake_hub import FakeHub

    out, first, _ = rounds
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    hub_args = ("--round", "0", "--hub_model_id", "me/ranker", "--hub_dataset_id", "me/pairs")
    monkeypatch.setenv("HF_TOKEN", "hf_round_secret_never_printed")
    # Nothing listens there: every push fails.
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")
    before = snapshot(copy / "round-0")
    failed = run(copy, *hub_args)
    assert failed["published"] == {} and "failed" in capsys.readouterr().out
    assert {k: v for k, v in snapshot(copy / "round-0").items() if k != "report.json"} == {
        k: v for k, v in before.items() if k != "report.json"}

    with FakeHub() as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
        retried = run(copy, *hub_args)
        printed = capsys.readouterr()
    assert set(retried["published"]) == {"model", "model-main", "dataset"}
    here = copy / "round-0"
    local_model = {p.relative_to(here / "model").as_posix(): p.read_bytes() for p in (here / "model").rglob("*") if p.is_file()}
    for revision in ("round-0", "main"):
        assert hub.files("me/ranker", repo_type="model", revision=revision) == local_model
    dataset_files = hub.files("me/pairs", repo_type="dataset", revision="round-0")
    assert "README.md" in dataset_files and any(name.startswith("data/train-") for name in dataset_files)
    assert hub.files("me/pairs", repo_type="dataset", revision="main") == {}  # the round's data lives on its branch
    # no training happened again: the model files are the ones of the first run
    assert retried["figures"] == first["figures"]
    assert "hf_round_secret_never_printed" not in printed.out + printed.err


def _command(output_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(RECIPE), "--config", str(TINY), "--output_dir", str(output_dir), *OVERRIDES, *extra]


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    assert files, f"no weights in {model_dir}"
    return {name: tensor for file in files for name, tensor in load_file(file).items()}


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_a_round_killed_after_a_checkpoint_resumes_with_its_trained_weights(rounds, tmp_path, kind):
    """SIGKILL once a checkpoint is complete, run the same command again: the round's model is bit
    for bit the model of a round that was never interrupted (one thread per process, fixed seed;
    the checkpoint restores weights, optimizer, scheduler and RNG), and its minutes count both
    attempts."""
    out, _, _ = rounds
    steps = 6
    extra = ["--round", "0", "--first_round_max_steps", str(steps), "--save_steps", "2", "--warmup_steps", "0"]
    extra += ["--use_peft", "--lora_r", "4", "--lora_alpha", "8", "--vision_warm_start_steps", "0"] if kind == "lora" else []
    env = dict(os.environ, OMP_NUM_THREADS="1")
    runs = {}
    for name in ("whole", "killed"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        for reused in ("data", "base-qwen2_5_vl-tiny"):  # made by the module's run; reused, not remade
            shutil.copytree(out / reused, runs[name] / reused)
    done = subprocess.run(_command(runs["whole"], *extra), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    run_dir = runs["killed"]
    command = _command(run_dir, *extra)
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = run_dir / "round-0" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(int(c.parent.name.split("-")[1]) for c in checkpoints.glob("checkpoint-*/trainer_state.json"))
    assert saved and saved[-1] < steps, f"the kill should land after a checkpoint and before the end, checkpoints: {saved}"
    assert not (run_dir / "round-0" / "report.json").exists()
    first_attempt = json.loads((checkpoints / "elapsed.json").read_text())["seconds"]
    dataset_before = snapshot(run_dir / "round-0" / "dataset")

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run_dir / "round-0" / "report.json").read_text())
    assert report["figures"]["steps"] == steps
    assert snapshot(run_dir / "round-0" / "dataset") == dataset_before  # the round's data was not remade
    expected, got = _weights(runs["whole"] / "round-0" / "model"), _weights(run_dir / "round-0" / "model")
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[name], expected[name]) for name in expected), "resumed weights differ from an uninterrupted run"
    assert report["figures"]["minutes"] * 60 > first_attempt  # both attempts count


def _launch_round_one(rounds, run_dir: Path, *launch: str, script: Path = RECIPE) -> subprocess.CompletedProcess:
    """Round 1 of the module's run again, in ``run_dir``, under ``accelerate launch *launch script``
    with two CPU processes (the same data, base and round-0 ranker, copied)."""
    out, _, _ = rounds
    run_dir.mkdir()
    for reused in ("data", "base-qwen2_5_vl-tiny", "round-0"):  # the same round-0 ranker relabels
        shutil.copytree(out / reused, run_dir / reused)
    command = [sys.executable, "-m", "accelerate.commands.launch", *launch, "--main_process_port", str(free_port()),
               str(script), *_command(run_dir, "--round", "1")[2:]]
    env = dict(os.environ, OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="true")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ddp_round_one(rounds, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    done = _launch_round_one(rounds, run_dir, "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no")
    yield run_dir, done
    shutil.rmtree(run_dir.parent, ignore_errors=True)


def test_two_processes_relabel_and_score_their_shares_like_one(rounds, ddp_round_one):
    """Round 1 under a 2-process launch (DDP on gloo): each process relabels and scores its share;
    the gathered labels equal the 1-process run's, the gathered scores equal what one process
    computes with the same model and anchors, and the round completes."""
    import numpy as np

    from ssvqa.pairs.dataset import load_pairs
    from ssvqa.scorer import ANCHORS_FILE, QualityScorer

    out, _, second = rounds
    run_dir, done = ddp_round_one
    here = run_dir / "round-1"
    figures = json.loads((here / "report.json").read_text())["figures"]
    assert figures["steps"] == 3 and figures["processes"] == 2 and figures["distributed"] == "MULTI_CPU"
    assert done.stdout.count("| round |") == 1  # one process printed the table

    # Relabelling: both processes worked, on halves of the one-process work, with the same answers.
    one = second["figures"]["relabel_comparisons_per_process"]
    two = figures["relabel_comparisons_per_process"]
    assert len(one) == 1 and len(two) == 2 and sum(two) == one[0] and min(two) > 0 and abs(two[0] - two[1]) <= 8
    alone, parallel = load_pairs(out / "round-1" / "dataset")["train"], load_pairs(here / "dataset")["train"]
    assert parallel["label"] == alone["label"] and parallel["origin"] == alone["origin"]
    np.testing.assert_allclose(parallel["prob"], alone["prob"], rtol=0, atol=1e-5)

    # Scoring: both processes compared, the totals are one process's, the scores are one process's.
    per_process = figures["scoring_comparisons_per_process"]
    assert len(per_process) == 2 and min(per_process) > 0
    assert sum(per_process) == sum(second["figures"]["scoring_comparisons_per_process"])
    name = next(iter(figures["benchmarks"]))
    gathered = _scores(here / "benchmarks" / name / "scores.csv")
    scorer = QualityScorer.from_pretrained(str(here / "model"), mirrored=True, batch_size=8)  # its saved sampling
    recomputed = QualityScorer(scorer.model, scorer.processor, scorer.anchor_videos, scorer.anchor_scores,
                               sampling=scorer.sampling, mirrored=True, batch_size=8)
    np.testing.assert_allclose(scorer.anchor_block, recomputed.anchor_block, rtol=0, atol=1e-5)  # split block == one
    alone_scores = scorer.score(list(gathered))
    np.testing.assert_allclose(list(gathered.values()), alone_scores, rtol=0, atol=1e-3)
    assert len(gathered) == figures["benchmarks"][name]["n"]


def test_a_round_under_fsdp_trains_relabels_and_scores_like_ddp(rounds, ddp_round_one, tmp_path):
    """Round 1 with FSDP2 (full shard of the decoder layers, FULL_STATE_DICT) on 2 CPU processes:
    training on the sharded model, relabelling and scoring with every process taking part, the
    full-state save. accelerate runs FSDP only on accelerators, so ``tests/scripts/cpu_fsdp_round.py``
    sets the distributed type back to FSDP on CPU (its docstring says what that does not cover).
    Same global batch and data order as the DDP launch, so the round must come out the same: its
    labels exactly, its weights and scores up to the order of float reductions."""
    import numpy as np

    from ssvqa.pairs.dataset import load_pairs

    ddp_dir, _ = ddp_round_one
    run_dir = tmp_path / "run"
    _launch_round_one(rounds, run_dir, "--config_file", str(ROOT / "tests" / "scripts" / "cpu_fsdp.yaml"),
                      script=ROOT / "tests" / "scripts" / "cpu_fsdp_round.py")
    fsdp, ddp = (json.loads((d / "round-1" / "report.json").read_text())["figures"] for d in (run_dir, ddp_dir))
    assert fsdp["distributed"] == "FSDP" and fsdp["processes"] == 2 and fsdp["steps"] == ddp["steps"]
    assert fsdp["relabel_comparisons_per_process"] == ddp["relabel_comparisons_per_process"]
    assert fsdp["scoring_comparisons_per_process"] == ddp["scoring_comparisons_per_process"]
    ours, theirs = (load_pairs(d / "round-1" / "dataset")["train"] for d in (run_dir, ddp_dir))
    assert ours["label"] == theirs["label"]
    expected, got = _weights(ddp_dir / "round-1" / "model"), _weights(run_dir / "round-1" / "model")
    assert got.keys() == expected.keys()
    assert max(float((got[k] - expected[k]).abs().max()) for k in expected) < 1e-4
    before = _weights(run_dir / "round-0" / "model")
    assert any(not torch.equal(got[k], before[k]) for k in got)  # it trained
    name = next(iter(fsdp["benchmarks"]))
    scores = [{Path(video).relative_to(d).as_posix(): score
               for video, score in _scores(d / "round-1" / "benchmarks" / name / "scores.csv").items()} for d in (run_dir, ddp_dir)]
    assert scores[0].keys() == scores[1].keys()
    # the same model up to float summation order (weights within 1e-4): its 0-100 scores, through the
    # comparisons, the Bradley-Terry fit and the calibration, agree to a few hundredths (measured:
    # 0.01 with one warm-start head, 0.033 with a head per type), not to the last digit
    np.testing.assert_allclose(list(scores[0].values()), list(scores[1].values()), rtol=0, atol=0.1)


def _scores(path: Path) -> dict[str, float]:
    with open(path, newline="") as handle:
        return {row["video"]: float(row["score"]) for row in csv.DictReader(handle)}


# Third-party chatter the quiet default must keep out of a round's output (the list).
NOISE = ("Generating", "Casting the dataset", "Creating parquet", "Loading weights", "Writing model shards",
         "kernels", "Warning", "warn(", "it/s]")


def test_a_round_prints_one_page(rounds, tmp_path):
    """A round as a log file sees it: no carriage-return bars, no third-party bars or warnings, a
    line per stage, a few lines per long step, then the table. (The generated data is reused from
    the module's run to keep CI fast; the data builders' bars go through the same helper.)"""
    out, _, _ = rounds
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for reused in ("data", "base-qwen2_5_vl-tiny"):
        shutil.copytree(out / reused, run_dir / reused)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(_command(run_dir, "--round", "0"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "\r" not in output
    noisy = [line for line in output.splitlines() if any(word in line for word in NOISE)]
    assert not noisy, noisy
    for stage in ("[train] round 0", "[eval] pair accuracy", "[eval] scoring"):
        assert stage in done.stdout
    before_table = done.stdout.split("| round |")[0].splitlines() + done.stderr.splitlines()
    assert len(before_table) <= 25, output
    assert f"plot: {run_dir / 'rounds.png'}" in done.stdout


def test_new_pairs_are_drawn_hard_or_random_labelled_and_kept_in_later_rounds(rounds, tmp_path):
    """Rounds k > 0 with new_pairs: hard pool pairs (student-teacher disagreement) and fresh synthetic
    pairs the student gets wrong, or random pool pairs of the same count; they stay in later rounds."""
    from ssvqa.pairs.dataset import load_pairs
    from ssvqa.rounds.new_pairs import NEW_PAIRS_DIR

    out, first, _ = rounds
    base = len(load_pairs(out / "round-0" / "dataset")["train"])
    runs = {}
    for name, extra in (("hard", ["--hard_fraction", "1", "--disagreement_share", "0.5"]), ("random", ["--hard_fraction", "0"])):
        copy = tmp_path / name
        shutil.copytree(out, copy, ignore=shutil.ignore_patterns("round-1", "hf-cache-*"))
        runs[name] = (copy, run(copy, "--round", "1", "--new_pairs", "6", *extra))

    copy, report = runs["hard"]
    assert report["figures"]["new_pairs"] == {"disagreement": 3, "student_error": 3}
    assert report["figures"]["train_pairs"] == base + 6
    new = load_pairs(copy / "round-1" / NEW_PAIRS_DIR)["train"]
    details = [json.loads(p) for p in new["provenance"]]
    for origin, label, prob, detail in zip(new["origin"], new["label"], new["prob"], details):
        assert detail["round"] == 1
        if detail["selected"] == "disagreement":  # a pool pair the ranker labelled, with why it was chosen
            assert origin == "relabel" and detail["disagreement"] > 0 and detail["teacher"] == "classical"
            assert detail["labeller"] == "ranker (round 0)" and {"student_a", "student_b", "teachers"} <= set(detail)
        else:  # a fresh synthetic pair: exact label kept, the student's wrong or unsure answer recorded
            assert detail["selected"] == "student_error" and origin == "distortion"
            assert prob == detail["label_prob"] and detail["error"] > -0.5
    errors = [d["error"] for d in details if d["selected"] == "student_error"]
    assert errors == sorted(errors, reverse=True)  # the worst answers first
    assert 0 <= report["figures"]["new_pair_label_agreement"] <= 1

    _, control = runs["random"]
    assert control["figures"]["new_pairs"] == {"random": 6} and control["figures"]["train_pairs"] == base + 6

    # Round 2 keeps round 1's new pairs (with their labels) and adds its own.
    third = run(copy, "--round", "2", "--new_pairs", "6")
    assert third["figures"]["train_pairs"] == base + 12
    kept = load_pairs(copy / "round-2" / "dataset")["train"]
    assert sum(json.loads(p).get("round") == 1 and "selected" in json.loads(p) for p in kept["provenance"]) == 6


def test_contradictory_trainable_parts_stop_a_round_before_its_data_is_made(tmp_path):
    from ssvqa.rounds import run_round

    script_args, _, training_args, model_args = parse(tmp_path / "run", "--round", "0", "--language_model", "lora",
                                                      "--pair_datasets", str(tmp_path / "pairs"))
    with pytest.raises(SystemExit, match="language_model=lora needs a LoRA config"):
        run_round(script_args, training_args, model_args)
    assert not (tmp_path / "run").exists()


def test_new_pool_pairs_without_a_teacher_are_refused_by_name():
    from ssvqa.rounds import RoundArguments

    with pytest.raises(ValueError, match="pool_teachers"):
        RoundArguments(pair_datasets=["pairs"], new_pairs=4, pool_teachers=[])
    # only synthetic pairs need no teacher
    RoundArguments(pair_datasets=["pairs"], new_pairs=4, pool_teachers=[], disagreement_share=0.0, synthetic_sources="clips")


def test_an_unknown_warm_start_head_kind_is_refused_before_anything_runs():
    from ssvqa.rounds import RoundArguments

    with pytest.raises(ValueError, match="vision_warm_start_heads must be 'per_type' or 'one', got 'per-type'"):
        RoundArguments(pair_datasets=["pairs"], vision_warm_start_heads="per-type")


def test_relabel_only_with_a_ranker_that_beats_the_labels_source(rounds, tmp_path, monkeypatch):
    """relabel_when: better. The teachers' held-out accuracy is their ordering of the held-out
    exact-label pairs; a ranker that does not beat it leaves round 0's pairs and labels as they are."""
    from accelerate import PartialState

    import ssvqa.rounds.data as data
    from ssvqa.annotators import ClassicalAnnotator, annotate
    from ssvqa.pairs.dataset import load_pairs

    out, first, _ = rounds
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("round-1", "hf-cache-*"))
    from ssvqa.demo import prepare_world

    args, demo_args, training_args, _ = parse(copy, "--round", "1", "--relabel_when", "better")
    prepare_world(demo_args, args, training_args)  # the demo's data, already made: its fields only
    pairs = data.load_round_pairs(args, tmp_path / "cache")
    measured = data._teachers_heldout_accuracy(args, training_args, copy, pairs, PartialState(cpu=True))
    # the same figure by hand: the classical teacher's scores of the pairs' videos, written from their bytes
    heldout = data.heldout_pairs(pairs, args, training_args.seed)
    written = {p.read_bytes(): str(p) for p in (copy / "data" / "heldout-videos").glob("*.mp4")}
    rows = [(written[a["bytes"]], written[b["bytes"]], prob) for a, b, prob in zip(heldout["video_a"], heldout["video_b"], heldout["prob"]) if prob != 0.5]
    scores = annotate(sorted(set(written.values())), ClassicalAnnotator(), progress=False).scores
    by_hand = sum((scores[b] > scores[a]) if prob > 0.5 else (scores[a] > scores[b]) for a, b, prob in rows) / len(rows)
    assert measured == pytest.approx(by_hand) and len(rows) > 0

    monkeypatch.setattr(data, "_teachers_heldout_accuracy", lambda *a, **k: 1.0)  # no ranker beats a perfect teacher
    report = run(copy, "--round", "1", "--relabel_when", "better")
    figures = report["figures"]
    assert figures["relabelled"] is False and figures["labeller"] == "teachers classical"
    assert figures["labels_heldout_accuracy"] == 1.0
    assert figures["ranker_heldout_accuracy"] == first["figures"]["heldout_pair_accuracy"]
    before, after = load_pairs(copy / "round-0" / "dataset")["train"], load_pairs(copy / "round-1" / "dataset")["train"]
    assert after["label"] == before["label"] and after["origin"] == before["origin"]
    assert "kept" in (copy / "round-1" / "dataset" / "README.md").read_text()


def test_graded_pairs_compare_training_contents_only_labelled_by_their_levels(rounds, tmp_path):
    """The demo's optional cross-content pairs (``graded_versions_per_clip``): graded versions of the
    distortion pairs' training contents -- never a test content -- each pair labelled the way its
    two known levels point, all in train."""
    from ssvqa.demo import DemoArguments, _graded_pairs
    from ssvqa.pairs.dataset import load_pairs

    out, _, _ = rounds
    distortion = load_pairs(out / "data" / "distortion-pairs")
    contents = {split: {Path(json.loads(p)["source"]).name for p in rows["provenance"]} for split, rows in distortion.items()}
    assert contents["train"] and contents["test"]
    clips = sorted((out / "data" / "corpus").glob("*.mp4"))
    folder = _graded_pairs(DemoArguments(graded_versions_per_clip=3, distortion_types=["exposure", "noise"]), clips,
                           out / "data" / "distortion-pairs", tmp_path, seed=0)
    with open(tmp_path / "graded" / "quality.csv", newline="") as handle:
        quality = {row["name"]: row for row in csv.DictReader(handle)}
    assert {row["content"] for row in quality.values()} == contents["train"]  # every training content, no test one

    graded = load_pairs(folder)
    assert set(graded) == {"train"} and set(graded["train"]["origin"]) == {"mos"}
    pairs = [json.loads(p) for p in graded["train"]["provenance"]]
    assert any(quality[p["name_a"]]["content"] != quality[p["name_b"]]["content"] for p in pairs)
    for provenance, label in zip(pairs, graded["train"]["label"]):
        gap = float(quality[provenance["name_b"]]["mos"]) - float(quality[provenance["name_a"]]["mos"])
        assert (label > 2) == (gap > 0) and (label < 2) == (gap < 0)  # the levels' order, exactly
