"""How well do trained rankers order each type's ladder on many contents they never saw?

A round reports held-out pair accuracy on a sample of its own test split (``max_eval_pairs``: 96
pairs of the demo's 12 held-out contents, about 16 per type). Per content, the tiny ranker tends
to order a whole ladder right or a whole ladder backwards, so a per-type figure from few contents
moves with which contents were drawn. This bench scores saved models on one fixed set: the
``--contents`` clips of corpus seed ``--corpus-seed`` (no demo of seeds 0-2 trains on seed 7's
contents), every pair of distinct levels (10) of every type on each, both orders averaged as the
rounds' evaluation does. It prints per type the pair accuracy and the share of contents ordered
backwards (accuracy <= 0.2).

It also tests one explanation of the backwards contents, the **contrast cue**: per content, how
much the type's strongest level changes the frames' global contrast (the standard deviation of
the grey level, the mean of the RGB channels, of the frames the model sees, level 4 against level 0), and per type the Spearman correlation of the
contents' pair accuracy with that change, with the accuracy on the contents whose contrast the
distortion raises and on the rest. A ranker that reads global contrast instead of the distortion
itself orders a ladder right where the distortion lowers contrast and backwards where it raises
it (noise on dark or flat contents), so the correlation comes out strongly negative.

    export PYTHONPATH=$PWD
    python bench/unseen_contents.py outputs/tiny-rounds/round-0/model outputs/tiny-rounds/round-2/model

Ladders are rendered as ``bench/learn_mix.py`` renders them (160x120, a noise seed per content)
and cached under ``--data``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TYPES = ["h264", "gaussian_blur", "noise", "downscale", "exposure", "overexposure"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="saved ranker folders (a round's model/)")
    parser.add_argument("--contents", type=int, default=24)
    parser.add_argument("--corpus-seed", type=int, default=7)
    parser.add_argument("--types", nargs="+", default=TYPES)
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="length of the rendered contents (the demo's clip_seconds)")
    parser.add_argument("--data", default="/tmp/ssvqa-unseen-contents")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    import learn_mix
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ssvqa.prompts import level_token_ids

    data = argparse.Namespace(data=args.data, train_contents=0, test_contents=args.contents, extra_train_contents=0,
                              corpus_seed=args.corpus_seed,
                              num_frames=4, max_pixels=112 * 112, sampling="resize", types=args.types,
                              clip_seconds=args.clip_seconds)
    _, clips, frames = learn_mix.prepare(data)
    report = {}
    for folder in args.models:
        model = AutoModelForImageTextToText.from_pretrained(folder)
        processor = AutoProcessor.from_pretrained(folder)
        processor.tokenizer.padding_side = "left"
        ids = level_token_ids(processor.tokenizer)
        figures = {}
        for kind in args.types:
            per_content = [learn_mix.evaluate(model, processor, ids, frames, [clip], [kind], mirrored=True)[kind]["pair_accuracy"]
                           for clip in clips]
            figures[kind] = {"pair_accuracy": sum(per_content) / len(per_content),
                             "backwards": sum(a <= 0.2 for a in per_content) / len(per_content), "per_content": per_content,
                             "contrast_cue": contrast_cue(per_content, [contrast_change(frames, clip, kind) for clip in clips])}
        mean = sum(f["pair_accuracy"] for f in figures.values()) / len(figures)
        report[folder] = {"contents": clips, "types": figures, "mean_pair_accuracy": mean}
        print(f"{folder}: mean {mean:.3f} | " + ", ".join(
            f"{k} {f['pair_accuracy']:.3f} (backwards {f['backwards']:.2f})" for k, f in figures.items()), flush=True)
        print("  contrast cue (Spearman of accuracy with the contrast change; accuracy where the distortion raises contrast"
              " / lowers it): " + ", ".join(
                  f"{k} {f['contrast_cue']['spearman']:+.2f} ({_fmt(f['contrast_cue']['accuracy_raised'])} over "
                  f"{f['contrast_cue']['raised']} / {_fmt(f['contrast_cue']['accuracy_lowered'])})" for k, f in figures.items()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


def contrast_change(frames, clip, kind) -> float:
    """Relative change of the grey level's (RGB mean's) standard deviation from level 0 to level 4 (frames as the model sees them)."""
    def contrast(level):
        return float(frames[(clip, kind, level)].float().mean(-3).std())
    return contrast(4) / max(contrast(0), 1e-6) - 1


def contrast_cue(accuracy: list[float], change: list[float]) -> dict:
    from scipy.stats import spearmanr

    raised = [a for a, c in zip(accuracy, change) if c > 0]
    lowered = [a for a, c in zip(accuracy, change) if c <= 0]
    rho = spearmanr(accuracy, change)[0] if len(set(change)) > 1 and len(set(accuracy)) > 1 else float("nan")
    return {"spearman": float(rho), "raised": len(raised), "contrast_change": change,
            "accuracy_raised": sum(raised) / len(raised) if raised else None,
            "accuracy_lowered": sum(lowered) / len(lowered) if lowered else None}


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
