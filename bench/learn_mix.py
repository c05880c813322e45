"""Which distortion types does the tiny CPU ranker learn? Held-out pair accuracy per type.

Trains the tiny recipe's model (``qwen2_5_vl-small`` from random weights, 4 frames of 112x112,
batch 4 pairs with swap augmentation, ce loss, AdamW + cosine, as ``recipes/tiny/round.yaml``)
on ladder pairs of a mix of distortion types, then reports, on contents it never saw, the pair
accuracy per type and the mean within-ladder SRCC of a per-video win count (a video's mean
preference against the other levels of its ladder). Optionally warm-starts the vision tower first
(:func:`ssvqa.warm_start.warm_start_vision`). Frames are decoded once and kept in memory, so the
loop times only the model; the recipe's Trainer adds decoding on top.

    export PYTHONPATH=$PWD OMP_NUM_THREADS=1
    python bench/learn_mix.py --types h264 gaussian_blur noise downscale exposure overexposure \
        --steps 450 --warm-start-steps 150 --losses ce mirror_ce --seed 0 --out /tmp/learn-research/runs/ws-s0.json

``--losses`` trains once per loss (:func:`pair_loss`), each from the same weights after the same
warm start and on the same pairs, so they compare within one run; so do several ``--lr`` values
and ``--augments`` (:func:`augment_pair`: the same flip or shift of both videos of a pair, or a
different contrast for each). Held-out figures are reported
for the mirrored answer (both orders averaged, as the rounds' evaluation asks) and, at the end,
for a single order. ``--sampling fragments`` feeds native-resolution fragments instead of
resized frames (:func:`fragment_frames`).

Data (cached under --data): a corpus of --train-contents + --test-contents synthetic clips
(``ssvqa.corpus``, seed --corpus-seed), each rendered at every level (0-4) of every type at
160x120 (``ssvqa.distortions``). Pairs: two distinct levels of one type of one content, labelled
as ``ssvqa.pairs.distortion`` does (gap 1 -> better/worse, more -> superior/inferior).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def fragment_frames(frames: torch.Tensor, max_pixels: int, multiple: int) -> torch.Tensor:
    """FAST-VQA-style fragments: the frame size ``fit_size`` gives (the same pixel budget as
    resizing), filled with a grid of ``multiple`` x ``multiple`` crops at native resolution, one
    from the centre of each cell of the same grid laid over the whole frame."""
    from ssvqa.video import fit_size

    height, width = frames.shape[-2:]
    out_h, out_w = fit_size(int(height), int(width), max_pixels, multiple)
    rows, cols = out_h // multiple, out_w // multiple
    out = torch.empty((*frames.shape[:-2], out_h, out_w), dtype=frames.dtype)
    for i in range(rows):
        top = (2 * i + 1) * height // (2 * rows) - multiple // 2
        for j in range(cols):
            left = (2 * j + 1) * width // (2 * cols) - multiple // 2
            out[..., i * multiple : (i + 1) * multiple, j * multiple : (j + 1) * multiple] = \
                frames[..., top : top + multiple, left : left + multiple]
    return out


def prepare(args) -> tuple[list[str], list[str], dict]:
    """Corpus clips and every ladder's decoded frames: {(clip, type, level): frames}."""
    from ssvqa.corpus import make_corpus
    from ssvqa.distortions import Variant, render_variants
    from ssvqa.video import decode_frames

    data = Path(args.data)
    seconds = args.clip_seconds
    clips = make_corpus(data / "corpus", num_clips=args.train_contents + args.test_contents + args.extra_train_contents, seed=args.corpus_seed,
                        duration=seconds)
    names = [c.stem for c in clips]
    sampling = "" if args.sampling == "resize" else f"-{args.sampling}"
    length = "" if seconds == 2.0 else f"-{seconds:g}s"
    cache_file = data / f"frames-{args.num_frames}-{args.max_pixels}-{len(clips)}-{'-'.join(sorted(args.types))}{sampling}{length}-seeded.pt"
    if cache_file.exists():
        frames = torch.load(cache_file)
    else:
        frames = {}
        variants = [Variant(())] + [Variant(((t, lv),)) for t in args.types for lv in range(1, 5)]
        for index, clip in enumerate(clips):
            # a noise seed per content, as the distortion-pair builder does: with one seed for all
            # (until 2026-12-02) every clip's noise ladder had the same noise pattern, which the
            # ranker could learn on the training contents and find again on the test contents
            paths = render_variants(clip, variants, data / "ladders-seeded" / clip.stem, max_pixels=160 * 120, seed=1 + index)
            if args.sampling == "resize":
                decoded = {v.name: decode_frames(p, num_frames=args.num_frames, max_pixels=args.max_pixels, multiple=28)
                           for v, p in zip(variants, paths)}
            else:
                decoded = {v.name: fragment_frames(decode_frames(p, num_frames=args.num_frames), args.max_pixels, 28)
                           for v, p in zip(variants, paths)}
            for t in args.types:
                frames[(clip.stem, t, 0)] = decoded["pristine"]
                for lv in range(1, 5):
                    frames[(clip.stem, t, lv)] = decoded[f"{t}-{lv}"]
        torch.save(frames, cache_file)
    # contents are split by index, so the test contents are the same whatever the types; the extra
    # training contents come after them (the corpus keeps its earlier clips when it grows)
    test_end = args.train_contents + args.test_contents
    return names[: args.train_contents] + names[test_end:], names[args.train_contents : test_end], frames


def pair_row(frames, clip, kind, first, second):
    """A pair (first level, second level) with the builder's label: the less distorted is better."""
    from ssvqa.pairs.distortion import level_for_gap
    from ssvqa.labels import LEVELS, level_prob

    gap = abs(first - second)
    level = level_for_gap(gap)  # when the second is better (less distorted)
    if second > first:
        level = len(LEVELS) - 1 - level
    return {"a": frames[(clip, kind, first)], "b": frames[(clip, kind, second)], "label": level, "prob": level_prob(level),
            "type": kind}


@torch.no_grad()
def head_accuracy(model, processor, heads, frames, clips, types):
    """Per type: how well the warm start's head (its type's, or the one head) orders the 10 pairs
    of levels of each test content: does the vision tower's pooled feature carry the quality?"""
    from ssvqa.warm_start import pooled_video_features

    model.eval()
    result = {}
    for kind in types:
        head = heads.get(kind, heads.get(None))
        right = []
        for clip in clips:
            scores = F.cosine_similarity(pooled_video_features(model, processor, [frames[(clip, kind, lv)] for lv in range(5)]),
                                         head.unsqueeze(0), dim=-1).tolist()
            right += [scores[i] > scores[j] for i in range(5) for j in range(i + 1, 5)]
        result[kind] = sum(right) / len(right)
    model.train()
    return result


LOSSES = ("ce", "mirror_ce", "mirror_bt", "antisym")
AUGMENTS = ("none", "flip", "roll", "flip+roll", "contrast")
CONTRAST_RANGE = 1.3


def contrast_jitter(frames: torch.Tensor, rng: random.Random, spread: float = CONTRAST_RANGE) -> torch.Tensor:
    """One video's frames with their contrast scaled about each frame's mean grey level by a factor
    drawn log-uniformly in [1/spread, spread], independently for each video of a pair, so that a
    contrast difference between the two says nothing about which is better. Session 7 found the
    ranker reading "more global contrast is better": right for blur, down-up, H.264 and exposure on
    almost every content, right for noise on half of them. The mean is kept, so exposure pairs keep
    their brightness difference."""
    import math

    factor = math.exp(rng.uniform(-math.log(spread), math.log(spread)))
    values = frames.float()
    mean = values.mean(dim=(-3, -2, -1), keepdim=True)
    out = ((values - mean) * factor + mean).clamp(0, 255)
    return out.round().to(frames.dtype) if not frames.is_floating_point() else out


def augment_pair(kind: str, a: torch.Tensor, b: torch.Tensor, rng: random.Random, block: int = 28,
                 spread: float = CONTRAST_RANGE):
    """The same random, quality-preserving change to both videos of a training pair (frames
    ``(T, 3, H, W)``): ``flip`` mirrors left-right and/or reverses time; ``roll`` shifts the frames
    cyclically by whole multiples of ``block`` pixels (the 2x2-merged token's 28x28), so every
    patch keeps its pixels and only the tokens' places change. Tests whether the ranker learns the
    training contents by where things are instead of how they look. ``contrast`` is the exception:
    a different contrast for each video (:func:`contrast_jitter`)."""
    if kind == "none":
        return a, b
    if kind == "contrast":
        return contrast_jitter(a, rng, spread), contrast_jitter(b, rng, spread)
    dims = []
    if "flip" in kind:
        dims = [d for d, p in ((-1, rng.random()), (0, rng.random())) if p < 0.5]
    shift = (0, 0)
    if "roll" in kind:
        shift = (block * rng.randrange(max(1, a.shape[-2] // block)), block * rng.randrange(max(1, a.shape[-1] // block)))

    def apply(frames):
        if dims:
            frames = frames.flip(dims)
        if shift != (0, 0):
            frames = frames.roll(shift, dims=(-2, -1))
        return frames

    return apply(a), apply(b)


def pair_loss(kind, logits, target, probs):
    """The training loss of a swap-augmented batch: rows ``[:n]`` are pairs (a, b), rows ``[n:]``
    their mirrors (b, a) in the same order. ``R`` reverses the five levels.

    - ``ce``: cross-entropy of every row's logits (the recipe).
    - ``mirror_ce``: cross-entropy of the mirror-averaged logits ``z = (L(a,b) + R L(b,a)) / 2``
      against the label of (a, b) (the swap's ``R z`` against its mirrored label is the same term).
      The direction part of ``z`` (``z_k - z_{4-k}``) comes only from the order-sensitive part of
      the logits: an order-independent bias keeps only its R-symmetric part (how far apart).
    - ``mirror_bt``: fidelity loss of the mirror-averaged preference ``(p(a,b) + 1 - p(b,a)) / 2``
      against ``prob``: any order-independent part of the logits gives exactly 0.5, so the loss
      cannot move without an order-sensitive answer.
    - ``antisym``: the brief's ``z = (L(a,b) - R L(b,a)) / 2`` with cross-entropy on both halves.
      The swap's ``z`` is ``-R z`` and the two terms sum to ``lse(z) + lse(-z)``, whatever the
      label: kept to show it (see ``check_antisym``).
    """
    from ssvqa.labels import LEVEL_WEIGHTS
    from ssvqa.trainer import fidelity_loss

    n = len(logits) // 2
    first, second = logits[:n], logits[n:]
    if kind == "ce":
        return F.cross_entropy(logits, target)
    if kind == "mirror_ce":
        return F.cross_entropy((first + second.flip(-1)) / 2, target[:n])
    if kind == "antisym":
        z = (first - second.flip(-1)) / 2
        return F.cross_entropy(torch.cat([z, -z.flip(-1)]), target)
    if kind == "mirror_bt":
        weights = torch.tensor(LEVEL_WEIGHTS)
        pref = (first.softmax(-1) @ weights + 1 - second.softmax(-1) @ weights) / 2
        return fidelity_loss(pref, probs[:n]).mean()
    raise ValueError(f"unknown loss {kind!r}, one of {LOSSES}")


def level_logits(model, processor, level_ids, rows):
    from ssvqa.prompts import encode_pairs

    batch = encode_pairs(processor, [r["a"] for r in rows], [r["b"] for r in rows])
    out = model(**batch, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1, level_ids].float()


@torch.no_grad()
def evaluate(model, processor, level_ids, frames, clips, types, batch=16, mirrored=False):
    """Per type: accuracy over the 10 pairs of distinct levels of each test content (each shown in
    a seeded random order; ``mirrored``: the mean preference of both orders, as the rounds'
    evaluation and relabelling ask), and the mean within-content SRCC of each level's win score
    (its summed preference over the pairs it is in) against -level."""
    from scipy.stats import spearmanr

    from ssvqa.labels import LEVEL_WEIGHTS

    model.eval()
    weights = torch.tensor(LEVEL_WEIGHTS)
    result, order = {}, random.Random(1234)
    for kind in types:
        ordered = [(i, j) if order.random() < 0.5 else (j, i) for c in clips for i in range(5) for j in range(i + 1, 5)]
        contents = [c for c in clips for i in range(5) for j in range(i + 1, 5)]
        rows = [pair_row(frames, c, kind, i, j) | {"clip": c, "i": i, "j": j} for c, (i, j) in zip(contents, ordered)]
        prefs = []
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            logits = level_logits(model, processor, level_ids, chunk)
            prefs += (logits.softmax(-1) * weights).sum(-1).tolist()
        if mirrored:  # as scoring (mirrored=True) and the rounds' evaluation do: the mean of both orders
            swapped = [r | {"a": r["b"], "b": r["a"]} for r in rows]
            back = []
            for start in range(0, len(swapped), batch):
                logits = level_logits(model, processor, level_ids, swapped[start : start + batch])
                back += (logits.softmax(-1) * weights).sum(-1).tolist()
            prefs = [(p + 1 - q) / 2 for p, q in zip(prefs, back)]
        correct = [(p > 0.5) == (r["j"] < r["i"]) for p, r in zip(prefs, rows)]
        srccs = []
        for c in clips:
            wins = [0.0] * 5
            for p, r in zip(prefs, rows):
                if r["clip"] == c:
                    wins[r["j"]] += p  # second video preferred
                    wins[r["i"]] += 1 - p
            if len(set(wins)) > 1:
                srccs.append(spearmanr(wins, [-lv for lv in range(5)]).statistic)
        result[kind] = {"pair_accuracy": sum(correct) / len(correct), "ladder_srcc": sum(srccs) / len(srccs) if srccs else float("nan")}
    model.train()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--types", nargs="+", default=["h264", "gaussian_blur", "noise", "downscale", "exposure"])
    parser.add_argument("--train-contents", type=int, default=40)
    parser.add_argument("--test-contents", type=int, default=8)
    parser.add_argument("--extra-train-contents", type=int, default=0,
                        help="more training contents, drawn after the test contents: the test set stays the same")
    parser.add_argument("--corpus-seed", type=int, default=0)
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="length of the corpus clips (the demo's clip_seconds: 1)")
    parser.add_argument("--steps", type=int, default=450, help="pair-training steps (0: the warm start only)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, nargs="+", default=[5e-4],
                        help="learning rate of the pair training (several: one training per value, like --losses)")
    parser.add_argument("--max-grad-norm", type=float, default=0.0,
                        help="clip the gradient norm to this, as Trainer does (its default 1.0); 0: no clipping")
    parser.add_argument("--vision-lr", type=float, default=None, help="learning rate of the vision tower (default: --lr)")
    parser.add_argument("--num-frames", type=int, default=4)
    parser.add_argument("--max-pixels", type=int, default=112 * 112)
    parser.add_argument("--sampling", choices=["resize", "fragments"], default="resize",
                        help="whole frames resized to the budget, or native-resolution 28x28 fragments (fragment_frames)")
    parser.add_argument("--warm-start-steps", type=int, default=0)
    parser.add_argument("--warm-start-lr", type=float, default=1e-3)
    parser.add_argument("--warm-start-heads", choices=["one", "per_type"], default="one",
                        help="one cosine head for all pairs, or one per distortion type (warm_start_vision's group_of)")
    parser.add_argument("--losses", nargs="+", default=["ce"], choices=LOSSES,
                        help="train once per loss, each from the same start (after the same warm start) on the same pairs")
    parser.add_argument("--augments", nargs="+", default=["none"], choices=AUGMENTS,
                        help="train once per augmentation of the pair training (augment_pair), each from the same start "
                             "on the same pairs, like --losses")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="also evaluate an exponential moving average of the weights (this decay, e.g. 0.99) at every "
                             "evaluation: the same run, read through averaged weights")
    parser.add_argument("--contrast-range", type=float, default=CONTRAST_RANGE,
                        help="--augments contrast: each video's contrast scaled by a factor in [1/x, x] (contrast_jitter)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument("--data", default="/tmp/learn-research/data")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from ssvqa.prompts import level_token_ids
    from ssvqa.testing import build_tiny_model
    from ssvqa.warm_start import warm_start_vision

    started = time.time()
    train_clips, test_clips, frames = prepare(args)
    prepared = time.time() - started
    model, processor = build_tiny_model("qwen2_5_vl", "small", seed=0)  # the recipe's base (seed 0)
    processor.tokenizer.padding_side = "left"
    level_ids = level_token_ids(processor.tokenizer)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    def sample_pair():
        clip, kind = rng.choice(train_clips), rng.choice(args.types)
        first, second = rng.sample(range(5), 2)
        return pair_row(frames, clip, kind, first, second)

    report = {"args": vars(args), "prepare_seconds": prepared}
    if args.warm_start_steps:
        t0, rows = time.time(), []
        for _ in range(args.warm_start_steps * 8):
            r = sample_pair()
            rows.append({"video_a": r["a"], "video_b": r["b"], "prob": r["prob"], "type": r["type"]})
        group_of = (lambda row: row["type"]) if args.warm_start_heads == "per_type" else None
        history = warm_start_vision(model, processor, rows, steps=args.warm_start_steps, learning_rate=args.warm_start_lr,
                                    group_of=group_of, seed=args.seed, log_every=50)
        report["warm_start"] = {"seconds": time.time() - t0, "final_accuracy": sum(history["accuracy"][-20:]) / 20,
                                "head_heldout": head_accuracy(model, processor, history["heads"], frames, test_clips, args.types),
                                "heldout": evaluate(model, processor, level_ids, frames, test_clips, args.types, mirrored=True)}
        print(f"after warm start ({time.time() - t0:.0f} s): head held-out {json.dumps(report['warm_start']['head_heldout'])}", flush=True)

    start_weights = {k: v.clone() for k, v in model.state_dict().items()}
    start_rng, start_torch = rng.getstate(), torch.get_rng_state()
    runs = [(loss, aug, lr) for loss in args.losses for aug in args.augments for lr in args.lr] if args.steps else []
    for loss_kind, augment, lr in runs:  # --steps 0: the warm start's figures only
        model.load_state_dict(start_weights)
        rng.setstate(start_rng)
        torch.set_rng_state(start_torch)
        aug_rng = random.Random(args.seed + 1000)
        key = loss_kind if augment == "none" else f"{loss_kind}+{augment}"
        key += f"@{lr:g}" if len(args.lr) > 1 else ""
        report[key] = train(model, processor, level_ids, frames, test_clips, sample_pair, loss_kind, args, lr=lr, name=key,
                            augment=lambda r, augment=augment: r | dict(zip("ab", augment_pair(augment, r["a"], r["b"], aug_rng,
                                                                                          spread=args.contrast_range))))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=1))
    if args.out and not args.steps:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"total {time.time() - started:.0f} s", flush=True)


def train(model, processor, level_ids, frames, test_clips, sample_pair, loss_kind, args, lr, name, augment=lambda row: row) -> dict:
    """Train from the model as it is with ``loss_kind`` at ``lr``, each sampled pair through
    ``augment``; the curve and the final held-out figures (single order and mirrored). ``name``
    labels the printed lines."""
    from ssvqa.labels import LEVEL_WEIGHTS, LEVELS
    from ssvqa.warm_start import vision_module
    from transformers import get_cosine_schedule_with_warmup  # after ssvqa (its torchvision shim)

    visual_params = list(vision_module(model).parameters())
    visual_ids = {id(p) for p in visual_params}
    other = [p for p in model.parameters() if id(p) not in visual_ids]
    optimizer = torch.optim.AdamW([{"params": other, "lr": lr},
                                   {"params": visual_params, "lr": args.vision_lr or lr}], weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, 10, args.steps)
    weights = torch.tensor(LEVEL_WEIGHTS)
    model.train()
    ema = {k: v.detach().clone().float() for k, v in model.state_dict().items()} if args.ema else None
    t1, losses, accs, mirrored_accs, curve, grad_norms = time.time(), [], [], [], [], []
    for step in range(1, args.steps + 1):
        rows = [augment(sample_pair()) for _ in range(args.batch)]
        rows += [{"a": r["b"], "b": r["a"], "label": len(LEVELS) - 1 - r["label"], "prob": 1 - r["prob"]} for r in rows]
        logits = level_logits(model, processor, level_ids, rows)
        target = torch.tensor([r["label"] for r in rows])
        probs = torch.tensor([r["prob"] for r in rows])
        loss = pair_loss(loss_kind, logits, target, probs)
        optimizer.zero_grad()
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm or float("inf")))
        optimizer.step()
        schedule.step()
        if ema is not None:
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    if v.is_floating_point():
                        ema[k].mul_(args.ema).add_(v.float(), alpha=1 - args.ema)
        with torch.no_grad():
            pref = logits.softmax(-1) @ weights
            n = args.batch
            both = (pref[:n] + 1 - pref[n:]) / 2
        accs.append(float(((pref > 0.5) == (probs > 0.5)).float().mean()))
        mirrored_accs.append(float(((both > 0.5) == (probs[:n] > 0.5)).float().mean()))
        losses.append(float(loss.detach()))
        grad_norms.append(grad_norm)
        if (args.eval_every and step % args.eval_every == 0) or step == args.steps:
            final = step == args.steps
            heldout = evaluate(model, processor, level_ids, frames, test_clips, args.types, mirrored=True)
            window = slice(-(args.eval_every or 100), None)
            point = {"step": step, "seconds": time.time() - t1, "train_loss": sum(losses[window]) / len(losses[window]),
                     "train_accuracy": sum(accs[window]) / len(accs[window]),
                     "train_accuracy_mirrored": sum(mirrored_accs[window]) / len(mirrored_accs[window]),
                     "grad_norm": sum(grad_norms[window]) / len(grad_norms[window]),
                     "heldout_mirrored": heldout}
            if final:
                point["heldout"] = evaluate(model, processor, level_ids, frames, test_clips, args.types)
            if ema is not None:
                current = {k: v.clone() for k, v in model.state_dict().items()}
                model.load_state_dict({k: ema[k].to(v.dtype) for k, v in current.items()})
                point["heldout_mirrored_ema"] = evaluate(model, processor, level_ids, frames, test_clips, args.types, mirrored=True)
                model.load_state_dict(current)
                model.train()
                print(f"[{name}] step {step} EMA {args.ema}: held-out mirrored " + " ".join(
                    f"{k} {v['pair_accuracy']:.2f}/{v['ladder_srcc']:.2f}" for k, v in point["heldout_mirrored_ema"].items()), flush=True)
            curve.append(point)
            print(f"[{name}] step {step} ({time.time() - t1:.0f} s): loss {point['train_loss']:.3f} grad norm "
                  f"{point['grad_norm']:.2f} train acc "
                  f"{point['train_accuracy']:.3f} / mirrored {point['train_accuracy_mirrored']:.3f} | held-out mirrored "
                  + " ".join(f"{k} {v['pair_accuracy']:.2f}/{v['ladder_srcc']:.2f}" for k, v in heldout.items()), flush=True)
    final = curve[-1]["heldout_mirrored"]
    mean = sum(v["pair_accuracy"] for v in final.values()) / len(final)
    print(f"[{name}] final mean held-out pair accuracy (mirrored) {mean:.3f}; train {time.time() - t1:.0f} s", flush=True)
    return {"curve": curve, "train_seconds": time.time() - t1, "final": final, "final_single_order": curve[-1]["heldout"],
            "train_loss_per_step": losses, "train_accuracy_per_step": accs}


if __name__ == "__main__":
    main()
