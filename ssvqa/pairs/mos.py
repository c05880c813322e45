"""Pairs from human mean opinion scores: a MOS-labelled dataset becomes comparison rows.

:func:`build_mos_pairs` is the whole build (``ssvqa build-mos-pairs``): read the scores, check
the videos, pair them (:func:`mos_pair_rows`), write the dataset and its card, push it.

Used where human labels exist (an upper-bound baseline, or mixing a little labelled data into
training). Each row is a pair in the project schema (:mod:`ssvqa.pairs.dataset`) with
``origin="mos"``; :func:`ssvqa.pairs.dataset.write_pair_dataset` writes and splits them.

Level and prob
--------------
The gap is taken as the *second* video's MOS minus the first's, and normalised:

* with rater spread (``mos_std``): ``z = Δ / sqrt(σ_a² + σ_b²)``. Under the Thurstone (case V,
  Gaussian) model this makes ``Φ(z)`` the probability that a random viewer rates the second video
  higher, which is exactly what ``prob`` means, so ``prob = Φ(z)``;
* without it: ``z = Δ / s``, with ``s`` the standard deviation of MOS across the dataset. There is
  no noise model then, so ``prob`` is the chosen level's weight (the same hard target every other
  hard-labelled pair uses).

The level is then the one whose weight (0, .25, .5, .75, 1) is nearest to ``Φ(z)``: ``|z| <
similar_z`` is ``similar``, ``similar_z ≤ |z| < superior_z`` is ``better``/``worse``, larger is
``superior``/``inferior``. The defaults are the midpoints between weights, ``Φ⁻¹(0.625) ≈ 0.319``
and ``Φ⁻¹(0.875) ≈ 1.150``, so level and prob always agree.

Keeping contents out of both splits
-----------------------------------
The project's rule is that train and test never share a content. A MOS pair holds two different
videos, so a per-row content id of either video would not do: video X could sit in a train pair
(as ``video_a``) and in a test pair (as ``video_b``). Instead the *videos* are split first: each
video's content key (``content_column``, else the video's ``name``, else its file name) is
hashed into one of ``num_groups`` groups, pairs are only made inside a group, and every row's
``content_id`` is its group (``"mos-g007"``). The writer's content-id split then sends whole
groups to train or test, so no video -- and no source content, when ``content_column`` names the
source of distorted versions (LIVE-YT-HFR, Waterloo-IVC-4K) -- is in both. The split's
granularity is one group: keep ``num_groups`` well above ``1 / test_fraction`` (the default aims
at about 20 videos per group, at most 100 groups).
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from ssvqa.hub import HubPush
from ssvqa.errors import SsvqaError, VideoError
from ssvqa.hashing import stable_bucket
from ssvqa.labels import LEVEL_WEIGHTS, level_of_gap
from ssvqa.pairs.card import DatasetCardInfo
from ssvqa.pairs.dataset import check_test_fraction, split_for, write_pair_dataset
from ssvqa.pairs.report import BuildReport, level_counts

_NORMAL = NormalDist()
SIMILAR_Z = _NORMAL.inv_cdf(0.625)  # ≈ 0.319: midpoint of the weights of similar and better
SUPERIOR_Z = _NORMAL.inv_cdf(0.875)  # ≈ 1.150: midpoint of the weights of better and superior


def mos_level(z: float, similar_z: float = SIMILAR_Z, superior_z: float = SUPERIOR_Z) -> int:
    """Level index for a normalised gap ``z`` (second minus first).

    >>> [LEVELS[mos_level(z)] for z in (-2.0, -0.5, 0.1, 0.5, 2.0)]
    ['inferior', 'worse', 'similar', 'better', 'superior']
    """
    return level_of_gap(z, similar_z, superior_z)


def mos_pair_rows(
    dataset,
    *,
    pairs_per_video: int = 4,
    seed: int = 0,
    similar_z: float = SIMILAR_Z,
    superior_z: float = SUPERIOR_Z,
    num_groups: int | None = None,
    content_column: str | None = None,
) -> list[dict[str, Any]]:
    """Pair rows (``video_a, video_b, label, prob, origin, content_id, provenance``) from MOS.

    ``dataset`` is a ``datasets.Dataset`` (e.g. from :func:`ssvqa.benchmarks.load_benchmark`)
    or a list of dicts with ``video`` (path) and ``mos``, optionally ``mos_std`` and ``name``.
    Each video proposes ``pairs_per_video`` partners drawn at random from its group (so a video
    is in about twice that many pairs); an unordered pair is made once, in a random order so
    ``better`` and ``worse`` are equally frequent. Deterministic for a given ``seed``. See the
    module doc for levels, probs and ``content_id``.
    """
    records = _records(dataset, content_column)
    n = len(records)
    if n < 2:
        raise ValueError(f"need at least 2 videos to make pairs, got {n}")
    if pairs_per_video < 1:
        raise ValueError(f"pairs_per_video must be >= 1, got {pairs_per_video}")
    mos = np.array([float(r["mos"]) for r in records])
    if not np.isfinite(mos).all():
        raise ValueError("mos contains NaN or infinite values")
    stds = [r.get("mos_std") for r in records]
    use_std = all(s is not None and math.isfinite(float(s)) for s in stds)
    spread = float(mos.std())
    if not use_std and spread == 0:
        raise ValueError("all MOS are equal and no rater std is given: no pair has a known order")

    num_groups = num_groups or max(1, min(100, n // 20))
    keys = [_content_key(r, content_column) for r in records]
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(_group_of(key, num_groups, seed), []).append(i)

    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for group in sorted(groups):
        members = groups[group]
        made: set[tuple[int, int]] = set()
        for i in members:
            others = [j for j in members if j != i and (min(i, j), max(i, j)) not in made]
            for j in rng.permutation(others)[:pairs_per_video].tolist():
                made.add((min(i, j), max(i, j)))
                a, b = (i, j) if rng.random() < 0.5 else (j, i)
                rows.append(_row(records, a, b, mos, stds if use_std else None, spread, group, similar_z, superior_z))
    return rows


def _row(records, a, b, mos, stds, spread, group, similar_z, superior_z) -> dict[str, Any]:
    gap = float(mos[b] - mos[a])
    if stds is not None:
        scale, basis = math.hypot(float(stds[a]), float(stds[b])), "rater_std"
    else:
        scale, basis = spread, "dataset_std"
    z = 0.0 if gap == 0 else gap / scale if scale > 0 else math.copysign(math.inf, gap)
    level = mos_level(z, similar_z, superior_z)
    if stds is not None:  # Thurstone: P(a random viewer rates the second video higher)
        prob = _NORMAL.cdf(z) if math.isfinite(z) else (1.0 if z > 0 else 0.0)
    else:
        prob = LEVEL_WEIGHTS[level]
    provenance = {
        "name_a": records[a].get("name", Path(records[a]["video"]).name),
        "name_b": records[b].get("name", Path(records[b]["video"]).name),
        "mos_a": float(mos[a]),
        "mos_b": float(mos[b]),
        "std_a": float(stds[a]) if stds is not None else None,
        "std_b": float(stds[b]) if stds is not None else None,
        "gap": gap,
        "z": z if math.isfinite(z) else None,
        "scale": scale,
        "scale_basis": basis,
        "group": group,
    }
    return {
        "video_a": str(records[a]["video"]),
        "video_b": str(records[b]["video"]),
        "label": level,
        "prob": float(prob),
        "origin": "mos",
        "content_id": f"mos-g{group:03d}",
        "provenance": json.dumps(provenance, sort_keys=True),
    }


def _records(dataset, content_column: str | None) -> list[Mapping[str, Any]]:
    if hasattr(dataset, "column_names"):  # a datasets.Dataset: read only the columns used
        wanted = {"video", "mos", "mos_std", "name", content_column}
        columns = {c: dataset[c] for c in dataset.column_names if c in wanted}
        records = [{c: values[i] for c, values in columns.items()} for i in range(len(dataset))]
    else:
        records = list(dataset)
    for i, record in enumerate(records):
        if "video" not in record or "mos" not in record:
            raise ValueError(f"row {i} needs 'video' and 'mos' (has {sorted(record)})")
        if not isinstance(record["video"], (str, Path)):
            raise ValueError(f"row {i}: 'video' must be a file path (load benchmarks with video paths, not decoded videos)")
    return records


def _content_key(record: Mapping[str, Any], content_column: str | None) -> str:
    if content_column is not None:
        if content_column not in record:
            raise ValueError(f"content_column {content_column!r} is not a column (have {sorted(record)})")
        return str(record[content_column])
    # The name (not the absolute path) so every machine puts a video in the same group.
    return str(record.get("name") or Path(record["video"]).name)


def _group_of(key: str, num_groups: int, seed: int) -> int:
    return stable_bucket(key, num_groups, seed)


__all__ = ["SIMILAR_Z", "SUPERIOR_Z", "mos_level", "mos_pair_rows"]


CONTENT_COLUMN = "content"  # the column --content-regex fills


@dataclass
class MosPairsReport(BuildReport):
    """What a MOS pair build did (:class:`~ssvqa.pairs.report.BuildReport`)."""

    videos: int = 0  # videos with a score that are in at least one pair
    groups: int = 0  # content groups the videos were hashed into
    unpaired: list[str] = field(default_factory=list)  # usable videos alone in their group: in no pair

    def headline(self) -> str:
        return f"MOS pairs: {self.num_pairs} pairs from {self.videos} videos in {self.groups} content groups, {self.seconds:.1f} s."

    def details(self) -> list[str]:
        lines = []
        if "test" not in self.counts:
            lines.append("  no test split: every group hashed to train (more videos, more groups or a larger --test-fraction)")
        if self.unpaired:
            lines.append(f"  {len(self.unpaired)} video(s) alone in their content group are in no pair (fewer --num-groups pairs them)")
        return lines

    def no_pairs_reason(self) -> str:
        return "fewer than two usable videos in a content group (see the reasons above)"


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
    push_to_hub: str | HubPush | None = None,
) -> MosPairsReport:
    """Build a MOS pair dataset into ``output_dir`` (see the module doc).

    ``source`` is ``"NAME=ROOT"``, a label file path, or already loaded rows (a
    ``datasets.Dataset`` or a list of dicts with ``video``, ``mos``, optionally ``mos_std`` and
    ``name``, as :func:`ssvqa.benchmarks.load_benchmark` returns them). ``num_groups`` defaults to
    about 20 videos per group (at most 100); the split's granularity is one group.
    """
    check_test_fraction(test_fraction)  # before any work
    start = time.monotonic()
    output_dir = Path(output_dir)
    if isinstance(source, (str, Path)):
        dataset, skipped = _load_scores(str(source), split=split, name_column=name_column, score_column=score_column,
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
    paired = {v for row in rows for v in (row["video_a"], row["video_b"])}
    report = MosPairsReport(
        output_dir=output_dir,
        counts=level_counts((split_for(row["content_id"], test_fraction, seed), row["label"]) for row in rows),
        videos=len(paired),
        groups=len({row["content_id"] for row in rows}),
        skipped=sorted(skipped, key=lambda s: s["input"]),
        seconds=time.monotonic() - start,
        unpaired=sorted(str(r.get("name") or r["video"]) for r in records if str(r["video"]) not in paired),
    )
    if push_to_hub:
        report.commit_url = HubPush.of(push_to_hub).push(output_dir, "MOS pairs")
    return report


def _load_scores(spec: str, **options):
    """The scored videos of ``spec`` (what :func:`ssvqa.benchmarks.load_scored` reads: ``"NAME=ROOT"``,
    ``"NAME/SPLIT=ROOT"`` or a label file) and what was missing: ``(dataset, skipped)``. With
    ``on_missing="skip"`` the missing videos are left out and ``skipped`` has one entry saying how
    many and which (the loader's message)."""
    from ssvqa.benchmarks import load_scored

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        dataset = load_scored(spec, **options)
    skipped = [{"input": spec, "reason": str(w.message)} for w in caught if "not found" in str(w.message)]
    for w in caught:  # anything else the loaders warned about is still shown
        if "not found" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return dataset, skipped


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
(`ssvqa.pairs.mos.mos_pair_rows`). The MOS gap is the second video's minus the first's, in units of
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
        builder="ssvqa build-mos-pairs (ssvqa.pairs.mos)",
        arguments=arguments,
        method=method,
        sections={"Licence of the videos": "The rows embed the source benchmark's video files; their licence "
                  "is the benchmark's own. Most VQA benchmarks may not be redistributed."},
        license=license,
        tags=["mos", "human-labels"],
    )
