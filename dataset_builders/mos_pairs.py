"""Build a pair dataset from human mean opinion scores (MOS): the supervised baseline.

Where human scores exist, they make pairs with known (noisy) labels: an upper bound for the
self-supervised rounds, or a little labelled data to mix into them. Nothing is rendered and no
model runs; the videos are the benchmark's own files.

1. **Read the scores.** ``SOURCE`` is a benchmark ``NAME=ROOT`` (``NAME`` one of
   :func:`ssvqa.benchmarks.benchmark_names`, read with :func:`ssvqa.benchmarks.load_benchmark`,
   ``--split`` choosing e.g. LSVQ's ``train``), or a label file ``ROOT/labels.csv`` (read with
   :func:`ssvqa.benchmarks.load_labelled_folder`; ``--name-column``/``--score-column``/
   ``--std-column`` name its columns). A labelled video that is not on disk stops the build
   (``--on-missing error``, so a partial download is never taken for the whole set) or, with
   ``--on-missing skip``, is left out and listed in ``skipped-*.jsonl`` and the card.
2. **Check the videos** (unless ``--no-check``): each file is opened (:func:`ssvqa.video.probe`,
   which reads the index and decodes nothing); a 0-byte, truncated or non-video file is left out
   with its reason, like a missing one.
3. **Pairs.** :func:`ssvqa.mos_pairs.mos_pair_rows`: the videos are first hashed into groups by
   their content key, pairs are made only inside a group, and whole groups go to train or test, so
   no video is in both splits. The level comes from the MOS gap in units of the raters' spread
   (``mos_std``, when the label file has it; ``prob = Phi(z)``) or of the dataset's MOS spread
   (``prob`` = the level's weight). Where one content has several versions (LIVE-YT-HFR,
   Waterloo-IVC-4K), ``--content-regex`` extracts the source content from the video's name so
   all versions of one content share a group.

Rows have ``origin = "mos"``, ``content_id`` = the group (``mos-g007``) and a JSON provenance with
both names, MOS, stds, the gap, z and the group.

The pairs embed the benchmark's video files. Most VQA benchmarks may not be redistributed: keep
such a dataset local, or push it to a private repository (``--private``) and read the licence.

Examples::

    ssvqa build-mos-pairs lsvq=/data/LSVQ --split train -o data/lsvq-mos-pairs
    ssvqa build-mos-pairs /data/my_set/labels.csv -o data/my-mos-pairs --std-column std
    ssvqa build-mos-pairs live-yt-hfr=/data/LIVE-YT-HFR -o data/hfr-mos-pairs --content-regex '^([^_]+)_'
    ssvqa build-mos-pairs lsvq=/data/LSVQ --split train -o data/lsvq-mos-pairs --push-to-hub your-org/ssvqa-mos-pairs --private
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssvqa.builder import add_publishing_arguments
from ssvqa.errors import SsvqaError, VideoError
from ssvqa.labels import LEVELS
from ssvqa.mos_pairs import SIMILAR_Z, SUPERIOR_Z, mos_pair_rows
from ssvqa.pair_dataset import DatasetCardInfo, split_for, write_pair_dataset

CONTENT_COLUMN = "content"  # the column --content-regex fills


@dataclass
class MosPairsReport:
    """What a build did; ``str(report)`` is the summary the command prints."""

    output_dir: Path
    counts: dict[str, dict[str, int]]  # split -> level -> pairs
    videos: int  # videos with a score that are in at least one pair
    groups: int  # content groups the videos were hashed into
    skipped: list[dict[str, Any]]
    seconds: float
    unpaired: list[str] = field(default_factory=list)  # usable videos alone in their group: in no pair
    commit_url: str | None = None

    @property
    def num_pairs(self) -> int:
        return sum(sum(levels.values()) for levels in self.counts.values())

    def __str__(self) -> str:
        lines = [f"MOS pairs: {self.num_pairs} pairs from {self.videos} videos in {self.groups} content groups, {self.seconds:.1f} s."]
        for split, levels in self.counts.items():
            lines.append(f"  {split:5s} " + ", ".join(f"{name} {levels.get(name, 0)}" for name in LEVELS))
        if "test" not in self.counts:
            lines.append("  no test split: every group hashed to train (more videos, more groups or a larger --test-fraction)")
        if self.unpaired:
            lines.append(f"  {len(self.unpaired)} video(s) alone in their content group are in no pair (fewer --num-groups pairs them)")
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} input(s):")
            lines += [f"  {item['input']}: {item['reason'].splitlines()[0]}" for item in self.skipped]
        lines.append(f"Dataset: {self.output_dir}  (ssvqa.pair_dataset.load_pairs({str(self.output_dir)!r}))")
        if self.commit_url:
            lines.append(f"Pushed: {self.commit_url}")
        return "\n".join(lines)


def load_scored_videos(
    source: str | Path,
    *,
    split: str | None = None,
    name_column: str = "name",
    score_column: str = "mos",
    std_column: str | None = None,
    on_missing: str = "error",
):
    """The scored videos of ``source`` and what was missing: ``(dataset, skipped)``.

    ``source`` is what :func:`ssvqa.benchmarks.load_scored` reads (``"NAME=ROOT"``,
    ``"NAME/SPLIT=ROOT"`` or a label file). With ``on_missing="skip"`` the missing videos are left out and
    ``skipped`` has one entry saying how many and which (the loader's message).
    """
    from ssvqa.benchmarks import load_scored

    spec = str(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        dataset = load_scored(spec, split=split, name_column=name_column, score_column=score_column,
                              std_column=std_column, on_missing=on_missing)
    skipped = [{"input": spec, "reason": str(w.message)} for w in caught if "not found" in str(w.message)]
    for w in caught:  # anything else the loaders warned about is still shown
        if "not found" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return dataset, skipped


def check_videos(paths: list[str], num_workers: int = 4) -> dict[str, str]:
    """``{path: reason}`` of the videos that cannot be opened (probed in ``num_workers`` threads)."""
    from ssvqa.video import probe

    def reason(path: str) -> str | None:
        try:
            probe(path)
        except VideoError as err:
            return err.reason
        return None

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        found = list(pool.map(reason, paths))
    return {path: why for path, why in zip(paths, found) if why is not None}


def build_mos_pairs(
    source,
    output_dir: str | Path,
    *,
    split: str | None = None,
    name_column: str = "name",
    score_column: str = "mos",
    std_column: str | None = None,
    on_missing: str = "error",
    pairs_per_video: int = 4,
    num_groups: int | None = None,
    content_regex: str | None = None,
    similar_z: float = SIMILAR_Z,
    superior_z: float = SUPERIOR_Z,
    test_fraction: float = 0.2,
    seed: int = 0,
    check: bool = True,
    num_workers: int = 4,
    license: str = "other",
    push_to_hub: str | None = None,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
) -> MosPairsReport:
    """Build a MOS pair dataset into ``output_dir`` (see the module doc).

    ``source`` is ``"NAME=ROOT"``, a label file path, or already loaded rows (a
    ``datasets.Dataset`` or a list of dicts with ``video``, ``mos``, optionally ``mos_std`` and
    ``name``, as :func:`ssvqa.benchmarks.load_benchmark` returns them). ``num_groups`` defaults to
    about 20 videos per group (at most 100); the split's granularity is one group.
    """
    start = time.monotonic()
    output_dir = Path(output_dir)
    if isinstance(source, (str, Path)):
        dataset, skipped = load_scored_videos(source, split=split, name_column=name_column, score_column=score_column,
                                              std_column=std_column, on_missing=on_missing)
        records = [dict(zip(dataset.column_names, values)) for values in zip(*(dataset[c] for c in dataset.column_names))]
        described = str(source)
    else:
        records = [dict(row) for row in source]
        skipped, described = [], f"{len(records)} rows given in Python"

    if check:
        bad = check_videos([str(r["video"]) for r in records], num_workers=num_workers)
        skipped += [{"input": str(r.get("name") or r["video"]), "reason": bad[str(r["video"])]} for r in records if str(r["video"]) in bad]
        records = [r for r in records if str(r["video"]) not in bad]
    content_column = None
    if content_regex is not None:
        pattern = re.compile(content_regex)
        for r in records:
            key = str(r.get("name") or Path(r["video"]).name)
            match = pattern.search(key)
            if match is None:
                raise SsvqaError(f"{key}: --content-regex {content_regex!r} does not match this video's name")
            r[CONTENT_COLUMN] = match.group(1) if pattern.groups else match.group(0)
        content_column = CONTENT_COLUMN

    rows = mos_pair_rows(records, pairs_per_video=pairs_per_video, seed=seed, similar_z=similar_z, superior_z=superior_z,
                         num_groups=num_groups, content_column=content_column)
    arguments = {
        "source": described,
        "split": split,
        "columns": {"name": name_column, "score": score_column, "std": std_column} if not _is_benchmark(source) else None,
        "on_missing": on_missing,
        "pairs_per_video": pairs_per_video,
        "num_groups": num_groups,
        "content_regex": content_regex,
        "similar_z": similar_z,
        "superior_z": superior_z,
        "test_fraction": test_fraction,
        "seed": seed,
        "checked_videos": check,
    }
    write_pair_dataset(
        rows, output_dir, card=_card(arguments, rows, license), test_fraction=test_fraction, seed=seed,
        skipped=sorted(skipped, key=lambda s: s["input"]),
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows:  # the split write_pair_dataset gave each row: a function of its content id
        split_name = split_for(row["content_id"], test_fraction, seed)
        counts.setdefault(split_name, {name: 0 for name in LEVELS})[LEVELS[row["label"]]] += 1
    paired = {v for row in rows for v in (row["video_a"], row["video_b"])}
    report = MosPairsReport(
        output_dir=output_dir,
        counts={s: counts[s] for s in ("train", "test") if s in counts},
        videos=len(paired),
        groups=len({row["content_id"] for row in rows}),
        skipped=sorted(skipped, key=lambda s: s["input"]),
        seconds=time.monotonic() - start,
        unpaired=sorted(str(r.get("name") or r["video"]) for r in records if str(r["video"]) not in paired),
    )
    if push_to_hub:
        from ssvqa.hub import push_folder

        report.commit_url = push_folder(output_dir, push_to_hub, repo_type="dataset", revision=revision, private=private,
                                        token=token, commit_message="MOS pairs")
    return report


def _is_benchmark(source) -> bool:
    return isinstance(source, (str, Path)) and "=" in str(source)


def _card(arguments: dict[str, Any], rows: list[dict[str, Any]], license: str) -> DatasetCardInfo:
    bases = {json.loads(row["provenance"])["scale_basis"] for row in rows}
    basis = (
        "the raters' spread: `z = (mos_b - mos_a) / sqrt(std_a^2 + std_b^2)` and `prob = Phi(z)`, the "
        "probability (Thurstone case V) that a random viewer rates the second video higher"
        if bases == {"rater_std"}
        else "the standard deviation of MOS over the dataset (the label file has no rater spread): "
        "`z = (mos_b - mos_a) / s`, and `prob` is the chosen level's weight"
    )
    regex = arguments["content_regex"]
    grouping = f"the part of its name matching `{regex}`" if regex else "its name"
    method = f"""
Human mean opinion scores (MOS) of `{arguments['source']}` were turned into pairs
(`ssvqa.mos_pairs.mos_pair_rows`). The MOS gap is the second video's minus the first's, in units of
{basis}. |z| < {arguments['similar_z']:.3f} is `similar`, |z| >= {arguments['superior_z']:.3f} is
`superior`/`inferior`, otherwise `better`/`worse` (the thresholds are the midpoints between level
weights, so level and prob agree).

Before pairing, each video was hashed into a content group (by {grouping});
pairs were made only inside a group ({arguments['pairs_per_video']} partners proposed per video, each unordered
pair once, in a random order), and `content_id` is the group, so train and test (split by
content id) never share a video. Videos that were missing or could not be opened are listed
under "Skipped inputs". These labels are human labels: use the dataset as a supervised upper
bound or to mix labelled pairs into self-supervised training, never to evaluate on the same videos.
"""
    return DatasetCardInfo(
        pretty_name="Video pairs from human quality scores (MOS)",
        builder="dataset_builders/mos_pairs.py (ssvqa build-mos-pairs)",
        arguments=arguments,
        method=method,
        sections={"Licence of the videos": "The rows embed the source benchmark's video files; their licence "
                  "is the benchmark's own. Most VQA benchmarks may not be redistributed."},
        license=license,
        tags=["mos", "human-labels"],
    )


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (shared by ``ssvqa build-mos-pairs`` and ``python -m``)."""
    parser.add_argument("source", help="a benchmark NAME=ROOT (e.g. lsvq=/data/LSVQ) or a label file ROOT/labels.csv")
    parser.add_argument("-o", "--output-dir", required=True, help="the dataset folder to write (created if missing)")
    read = parser.add_argument_group("reading the scores")
    read.add_argument("--split", default=None, help="split of a named benchmark (LSVQ: train, test, test_1080p; default: its test split)")
    read.add_argument("--name-column", default="name", help="label file: column of the video names (default: name)")
    read.add_argument("--score-column", default="mos", help="label file: column of the MOS (default: mos)")
    read.add_argument("--std-column", default=None, help="label file: column of the raters' standard deviation (default: none)")
    read.add_argument("--on-missing", choices=("error", "skip"), default="error",
                      help="a labelled video not on disk: stop (error, default) or leave it out and list it (skip)")
    read.add_argument("--no-check", action="store_true", help="do not open every video to check it is readable")
    read.add_argument("--num-workers", type=int, default=4, help="threads checking videos (default: 4)")
    what = parser.add_argument_group("pairs and labels")
    what.add_argument("--pairs-per-video", type=int, default=4, help="partners each video proposes (default: 4)")
    what.add_argument("--num-groups", type=int, default=None, help="content groups (default: about 20 videos each, at most 100)")
    what.add_argument("--content-regex", default=None,
                      help="regex whose first group (or match) of a video's name is its source content: versions of one "
                      "content stay in one group (default: the name itself)")
    what.add_argument("--similar-z", type=float, default=SIMILAR_Z, help=f"|z| below this is 'similar' (default: {SIMILAR_Z:.3f})")
    what.add_argument("--superior-z", type=float, default=SUPERIOR_Z, help=f"|z| from this is 'superior' (default: {SUPERIOR_Z:.3f})")
    what.add_argument("--test-fraction", type=float, default=0.2, help="share of content groups in the test split (default: 0.2)")
    what.add_argument("--seed", type=int, default=0, help="seeds the groups, the split and the pairing (default: 0)")
    add_publishing_arguments(parser, private_help="create the Hub repo private (benchmark videos are rarely redistributable)")


def main(args: argparse.Namespace) -> int:
    """Run the command with parsed ``args``; prints the summary."""
    report = build_mos_pairs(
        args.source,
        args.output_dir,
        split=args.split,
        name_column=args.name_column,
        score_column=args.score_column,
        std_column=args.std_column,
        on_missing=args.on_missing,
        pairs_per_video=args.pairs_per_video,
        num_groups=args.num_groups,
        content_regex=args.content_regex,
        similar_z=args.similar_z,
        superior_z=args.superior_z,
        test_fraction=args.test_fraction,
        seed=args.seed,
        check=not args.no_check,
        num_workers=args.num_workers,
        license=args.license,
        push_to_hub=args.push_to_hub,
        revision=args.revision,
        private=args.private,
        token=args.token,
    )
    print(report)
    return 0


if __name__ == "__main__":
    from dataset_builders.mos_pairs import add_arguments as _add_arguments, main as _main

    _parser = argparse.ArgumentParser(
        prog="python -m dataset_builders.mos_pairs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(_parser)
    raise SystemExit(_main(_parser.parse_args()))
