"""Build a pair dataset from unlabeled videos, labelled by quality teachers (pseudo labels).

No distortion is applied and no human rated anything: one or more *teachers* score every video,
and pairs of videos are labelled from those scores (:func:`ssvqa.pseudo_labels.label_pairs`).

1. **Teachers** (``--teachers``, any of, space- or comma-separated): ``classical``
   (:class:`ClassicalAnnotator`, signal measures, no model), ``brisque`` and ``niqe`` (published
   no-reference image quality models on sampled frames,
   :mod:`ssvqa.annotators.natural_scene`), ``lmm:MODEL`` (:class:`LMMLevelAnnotator`, a chat video LMM's rating-word
   distribution, zero-shot) and ``ranker:MODEL`` (:class:`RankerAnnotator`, a trained pair ranker
   with its saved ``anchors.json``). Each scores every video with
   :func:`ssvqa.annotators.annotate`, cached by content hash in ``OUTPUT_DIR/.work/annotations``:
   a rerun (or a run with one more teacher) scores only what is new. Teachers that run elsewhere
   (FAST-VQA, DOVER, Q-Align, ...) join with ``--teacher-scores NAME=FILE_OR_HUB_DATASET``
   (:mod:`ssvqa.annotators.external`); inputs the file has no score for are skipped by name and
   file entries that match no input are listed in the report.
2. **Split first.** Each video gets its split from its content id (the first 16 hex digits of its
   SHA-256) with :func:`ssvqa.pairs.dataset.split_for`, before any pair is made; pairs are then
   drawn *within* a split (``groups=``), so train and test never share a video, and identical
   files (same content id) are never paired with each other.
3. **Labels.** Each teacher's scores are put on one scale (by default W2S-VQA's rule: aligned to
   a reference teacher, ``--reference``, with the 4-parameter logistic), the combined score of a
   video is their mean and its *spread* their standard deviation; pairs are sampled with an even
   mix of small, medium and large gaps, pairs on which two teachers disagree in direction (each
   by more than ``--disagreement``) are dropped, and the level comes from the gap in units of
   the pair's uncertainty ``z`` (``|z| <= --similar``: similar; ``|z| > --superior``:
   superior/inferior). ``prob = Phi(z)``.

Rows have ``origin = "pseudo"``, ``content_id`` = the two videos' content ids joined by ``+``, and
a JSON provenance with each teacher's raw and normalised score of both videos, the combined
scores, spreads and ``z``, the videos' names and hashes, and the seed. Unusable inputs (0-byte,
not a video, truncated, ...) are listed with their reason in ``skipped-*.jsonl`` and the card, and
so is every byte-identical copy of an input used (it would only repeat that input's pairs).

Examples::

    ssvqa build-pseudo-pairs videos/ -o pseudo/
    ssvqa build-pseudo-pairs videos/ -o pseudo/ --teachers classical lmm:Qwen/Qwen2.5-VL-7B-Instruct
    ssvqa build-pseudo-pairs videos/ -o pseudo/ --teachers classical,brisque,niqe
    ssvqa build-pseudo-pairs videos.txt -o pseudo/ --teachers classical ranker:round-1/ --push-to-hub user/pseudo
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ssvqa.annotators.base import annotate
from ssvqa.annotators.external import ExternalScores
from ssvqa.hub import HubPush
from ssvqa.errors import UsageError
from ssvqa.labels import LevelThresholds
from ssvqa.pseudo_labels import label_pairs
from ssvqa.pairs.card import DatasetCardInfo
from ssvqa.pairs.dataset import PairRow, check_test_fraction, split_for, write_pair_dataset
from ssvqa.pairs.report import BuildReport, level_counts
from ssvqa.pairs.sources import Skipped, gather_inputs
from ssvqa.video import content_hash


def make_teacher(spec: str, *, lmm_options: dict[str, Any] | None = None, ranker_options: dict[str, Any] | None = None):
    """A teacher from its command-line spelling: ``classical``, ``brisque``, ``niqe``, ``lmm:MODEL`` or ``ranker:MODEL``.

    >>> make_teacher("classical").name
    'classical'
    """
    kind, _, target = spec.partition(":")
    if kind == "classical" and not target:
        from ssvqa.annotators.classical import ClassicalAnnotator

        return ClassicalAnnotator()
    if kind in ("brisque", "niqe") and not target:
        from ssvqa.annotators.natural_scene import BrisqueAnnotator, NiqeAnnotator

        return BrisqueAnnotator() if kind == "brisque" else NiqeAnnotator()
    if kind == "lmm" and target:
        from ssvqa.annotators.lmm import LMMLevelAnnotator

        return LMMLevelAnnotator(target, **(lmm_options or {}))
    if kind == "ranker" and target:
        from ssvqa.annotators.ranker import RankerAnnotator

        return RankerAnnotator.from_pretrained(target, **(ranker_options or {}))
    raise UsageError(f"unknown teacher {spec!r}: use classical, brisque, niqe, lmm:MODEL or ranker:MODEL")


@dataclass
class PseudoPairsReport(BuildReport):
    """What a pseudo-label pair build did (:class:`~ssvqa.pairs.report.BuildReport`)."""

    videos: int = 0  # videos every teacher scored
    label_counts: dict[str, Any] = field(default_factory=dict)  # per split: label_pairs' counts (sampled, dropped_disagreement, kept, ...)
    teachers: dict[str, dict[str, int]] = field(default_factory=dict)  # teacher -> {"scored": now, "failed": now, "cached": reused}
    unknown_videos: dict[str, list[str]] = field(default_factory=dict)  # external teacher -> entries matching no input

    @property
    def dropped_disagreement(self) -> int:
        return sum(c["dropped_disagreement"] for c in self.label_counts.values())

    def headline(self) -> str:
        return (f"Pseudo-label pairs{self.shard()}: {self.num_pairs} pairs from {self.videos} videos in {self.seconds:.1f} s "
                f"({self.dropped_disagreement} dropped: teachers disagreed).")

    def details(self) -> list[str]:
        lines = []
        for name, done in self.teachers.items():
            failed = f", {done['failed']} could not be scored" if done["failed"] else ""
            videos = "1 video" if done["scored"] == 1 else f"{done['scored']} videos"
            lines.append(f"  teacher {name}: {videos} scored now, {done['cached']} from the cache{failed}")
        for name, entries in self.unknown_videos.items():
            lines.append(f"  teacher {name}: {len(entries)} scored video(s) match no input: {', '.join(entries[:5])}"
                         + (" ..." if len(entries) > 5 else ""))
        return lines

    def no_pairs_reason(self) -> str:
        return "fewer than two usable videos (see the reasons above)"


def build_pseudo_pairs(
    inputs: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    *,
    teachers: Sequence[str | Any] = ("classical",),
    max_pairs_per_video: int = 4,
    test_fraction: float = 0.2,
    seed: int = 0,
    external_teachers: Sequence[str | ExternalScores] = (),
    normalisation: str = "logistic",
    reference: str | None = None,
    thresholds: LevelThresholds = LevelThresholds(),
    disagreement: float | None = 0.5,
    batch_size: int = 8,
    accelerator: Any = None,
    shard_index: int = 0,
    num_shards: int = 1,
    video_column: str = "video",
    work_dir: str | Path | None = None,
    license: str = "other",
    push_to_hub: str | HubPush | None = None,
    progress: bool = True,
) -> PseudoPairsReport:
    """Build this shard of a pseudo-label pair dataset into ``output_dir`` (see the module doc).

    ``inputs`` is anything :func:`ssvqa.pairs.sources.collect_inputs` reads, or a list of video paths.
    ``teachers`` are specs (``"classical"``, ``"brisque"``, ``"niqe"``, ``"lmm:MODEL"``,
    ``"ranker:MODEL"``; ``"brisque,niqe"`` names two) or ready annotators; ``external_teachers``
    are external teachers (``"NAME=FILE_OR_HUB_DATASET"`` or
    :class:`~ssvqa.annotators.external.ExternalScores`). ``reference`` names the teacher the
    others are aligned to (``normalisation="logistic"``; default: the first). Pairs are made
    among this shard's videos only.

    With an ``accelerator`` (``accelerate launch``), the processes share the scoring (each
    scores a strided share, see :func:`ssvqa.annotators.annotate`) and every process gets the
    same labels; only the main process writes the dataset and pushes it.
    """
    check_test_fraction(test_fraction)  # before any work
    start = time.monotonic()
    output_dir = Path(output_dir)
    work_dir = Path(work_dir) if work_dir is not None else output_dir / ".work"
    teachers = [part for t in teachers for part in (t.split(",") if isinstance(t, str) else [t]) if part != ""]
    if not teachers and not external_teachers:
        raise UsageError("need at least one teacher (--teachers or --teacher-scores)")
    annotators = [make_teacher(t) if isinstance(t, str) else t for t in teachers]
    external = [ExternalScores.from_spec(t) if isinstance(t, str) else t for t in external_teachers]
    names = [a.name for a in annotators] + [e.name for e in external]
    if len(set(names)) != len(names):
        raise UsageError(f"teacher names must differ, got {names} (give one a name=)")
    items, rejected = gather_inputs(inputs, output_dir, work_dir=work_dir, video_column=video_column,
                                    shard_index=shard_index, num_shards=num_shards)
    paths = [str(item.path) for item in items]

    # 1. every teacher scores every video (cached by content hash)
    teacher_scores: dict[str, dict[str, float]] = {}
    failures: dict[str, str] = {}
    hashes: dict[str, str] = {}
    done: dict[str, dict[str, int]] = {}
    for annotator in annotators:
        result = annotate(paths, annotator, cache_dir=work_dir / "annotations", batch_size=batch_size,
                          accelerator=accelerator, progress=progress)
        teacher_scores[annotator.name] = result.scores
        hashes.update(result.hashes)
        for path, reason in result.skipped.items():
            failures.setdefault(path, reason if len(annotators) == 1 else f"{annotator.name}: {reason}")
        done[annotator.name] = {
            "scored": result.num_scored - result.num_failed, "failed": result.num_failed, "cached": result.num_cached
        }
    unknown: dict[str, list[str]] = {}
    for teacher in external:
        matched = teacher.match({str(item.path): item.name for item in items})
        teacher_scores_by_path = matched.scores
        teacher_scores[teacher.name] = teacher_scores_by_path
        for item in items:
            if str(item.path) not in teacher_scores_by_path:
                failures.setdefault(str(item.path), f"{teacher.name}: no score for this video in {teacher.source}")
        for path in teacher_scores_by_path:
            if path not in hashes:  # no built-in teacher read it: the content id still comes from its bytes
                hashes[path] = content_hash(path)
        if matched.unknown:
            unknown[teacher.name] = matched.unknown
        done[teacher.name] = {"scored": 0, "failed": 0, "cached": len(teacher_scores_by_path)}
    # A video is used only when every teacher scored it: teachers are normalised over one set.
    usable = [p for p in paths if p not in failures]
    teacher_scores = {name: {p: scores[p] for p in usable} for name, scores in teacher_scores.items()}
    skipped = rejected + [Skipped(item.key, item.name, failures[str(item.path)]) for item in items if str(item.path) in failures]
    skipped.sort(key=lambda s: s.key)

    # 2. split first, by content; 3. pairs within each split
    content = {p: hashes[p][:16] for p in usable}
    split = {p: split_for(content[p], test_fraction, seed) for p in usable}
    name_of = {str(item.path): item.name for item in items}
    labels = label_pairs(
        teacher_scores, method=normalisation, reference=reference, thresholds=thresholds, disagreement=disagreement,
        max_pairs_per_video=max_pairs_per_video, seed=seed, content_ids=content, groups=split,
    ) if usable else None
    rows = []
    for row in labels.rows if labels else []:
        a, b = row["video_a"], row["video_b"]
        provenance = {
            **row["provenance"],
            "source_a": name_of[a], "source_b": name_of[b],
            "sha256_a": hashes[a], "sha256_b": hashes[b],
            "seed": seed,
        }
        rows.append(PairRow(a, b, row["label"], row["prob"], "pseudo", f"{content[a]}+{content[b]}",
                            provenance, split=split[a]))

    if labels:
        label_counts = {"all": {k: v for k, v in labels.counts.items()}}
    else:
        label_counts = {"all": {"videos": 0, "sampled": 0, "dropped_disagreement": 0, "kept": 0}}

    arguments = {
        "inputs": [str(p) for p in inputs] if not isinstance(inputs, (str, Path)) else str(inputs),
        "video_column": video_column,
        "teachers": [t if isinstance(t, str) else getattr(t, "name", type(t).__name__) for t in teachers],
        "teacher_scores": [t if isinstance(t, str) else f"{t.name}={t.source}" for t in external_teachers],
        "reference": reference,
        "max_pairs_per_video": max_pairs_per_video,
        "test_fraction": test_fraction,
        "seed": seed,
        "normalisation": normalisation,
        "thresholds": asdict(thresholds),
        "disagreement": disagreement,
        "num_shards": num_shards,
    }
    writer = accelerator is None or accelerator.is_main_process  # one writer for one folder
    if writer:
        write_pair_dataset(
            rows, output_dir,
            card=_card(names, thresholds, disagreement, normalisation, label_counts["all"], arguments, license),
            test_fraction=test_fraction, seed=seed, shard_index=shard_index, num_shards=num_shards,
            skipped=[s.to_dict() for s in skipped],
        )
    report = PseudoPairsReport(
        output_dir=output_dir,
        counts=level_counts((row.split, row.label_index) for row in rows),
        videos=len(usable),
        label_counts=label_counts,
        teachers=done,
        skipped=[s.to_dict() for s in skipped],
        seconds=time.monotonic() - start,
        shard_index=shard_index,
        num_shards=num_shards,
        unknown_videos=unknown,
    )
    if push_to_hub and writer and report.num_pairs:
        report.commit_url = HubPush.of(push_to_hub).push(output_dir, f"Pseudo-label pairs, shard {shard_index + 1} of {num_shards}")
    return report


def _card(names, thresholds, disagreement, normalisation, counts, arguments, license) -> DatasetCardInfo:
    method = f"""
Unlabeled videos were scored by {len(names)} teacher(s): {', '.join(f'`{n}`' for n in names)}
(`ssvqa.annotators`; external teachers' scores came from files). Each teacher's scores were put
on one scale (`{normalisation}`: `logistic` aligns each teacher to the reference teacher
`{arguments.get('reference') or names[0]}` with the 4-parameter logistic and standardises; `rank` maps
ranks to standard-normal quantiles; `zscore` standardises each teacher); a video's combined score
is the mean over teachers and its spread their standard deviation (0.5 when there is a single teacher).

Each video was assigned to train or test by its content id (first 16 hex digits of its SHA-256)
*before* pairing, and pairs were drawn only within a split, so no video is in both; files with
identical content are never paired together. Pairs mix small, medium and large score gaps
(at most {arguments['max_pairs_per_video']} pairs per video).

Pairs on which two teachers disagree in direction, each by more than {disagreement} normalised
units, were dropped{' (no disagreement filter)' if disagreement is None else ''}. The level comes from
`z = (s_b - s_a) / sqrt(spread_a^2 + spread_b^2 + {thresholds.noise_floor}^2)`: |z| <= {thresholds.similar}
is `similar`, |z| > {thresholds.superior} is `superior`/`inferior`, otherwise `better`/`worse`;
`prob = Phi(z)`. `provenance` holds every teacher's raw and normalised scores of both videos, the
combined scores, spreads and z, and the videos' names and SHA-256.

Counts (this shard): {counts.get('videos', 0)} videos scored by every teacher, {counts.get('sampled', 0)} pairs
sampled, {counts.get('dropped_disagreement', 0)} dropped for teacher disagreement, {counts.get('kept', 0)} kept.
"""
    return DatasetCardInfo(
        pretty_name="Pseudo-labelled pairs for video quality ranking",
        builder="ssvqa build-pseudo-pairs (ssvqa.pairs.pseudo)",
        arguments=arguments,
        method=method,
        license=license,
        tags=["pseudo-labels"],
    )
