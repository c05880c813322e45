"""Build a pair dataset from synthetic distortions of source videos (labels known by construction).

Each source video is rendered as a pristine reference plus ladders of distortions at increasing
severity (``ssvqa.distortions``); two renderings of the same source whose severities are ordered
make a pair whose label is known without any annotator.

Per source (deterministic: choices are seeded by the seed and the source's content hash, so
sharding and resuming never change them):

1. ``--types-per-source`` distortion types are drawn from ``--types`` (default: the whole
   catalogue); ``--levels`` picks the ladder levels (default: all, level 1 mildest).
   ``--composed N`` adds N variants that compose two of the drawn types (filters first, the
   codec last, as a camera then an encoder would).
2. One ffmpeg process renders the reference (the source at constant frame rate, scaled to fit
   ``--max-pixels``, near-losslessly encoded) and every variant; SSIM of each variant against the
   reference is measured and kept in the provenance.
3. Pairs: variant u is *better* than v when u's severity is at most v's for every distortion and
   lower for one (pristine = severity 0 of everything). Within a ladder that is simply the level
   order; composed variants are paired with the variants they dominate or are dominated by.
   The severity gap (sum of level differences) sets the level of the pair:

       gap 1   -> ``better`` / ``worse``          (adjacent levels, or pristine vs level 1)
       gap >=2 -> ``superior`` / ``inferior``

   A variant the distortion left unchanged on this content (SSIM >= 0.999 against the reference,
   e.g. dropped frames of a static scene) is honestly ``similar`` to the reference: it is paired
   with the reference only, as ``similar``. In composed variants such a step counts as severity
   0, and two variants that differ only by such steps are ``similar``. No other pair is.
4. Which video comes first is drawn at random (seeded), so the levels are balanced around
   ``similar``; ``prob`` is the level's weight (P(second is better)).

Rows have ``origin = "distortion"``, ``content_id`` = the first 16 hex digits of the source's
SHA-256 (so train/test split by content, and identical files share a split), and a JSON
provenance (distortion, family, variant names, levels, gap, SSIMs, source name and hash, seed).

Inputs: a folder of videos, a list file (one path per line), a video file, or a dataset with a
Video column (local folder or Hub id; ``--video-column``). Unusable inputs (0-byte, not a video,
truncated, path escaping its root, ...) are listed with their reason in ``skipped-*.jsonl`` and
the card. Byte-identical inputs are rendered once; the others are listed as duplicates of it.
Small sources: AV1 is encoded with libaom-av1 under 64 px a side (SVT-AV1 refuses such frames),
and h265 is not drawn for them (see ``ssvqa.distortions.MIN_SIDE``).

Scale: ``--num-proc`` worker processes; ``--shard-index/--num-shards`` split the inputs across
machines (each writes its own ``data/<split>-<shard>-of-<n>.parquet`` into one folder or repo).
Interrupted runs resume: finished sources (kept in ``OUTPUT_DIR/.work``, never uploaded) are not
rendered again, and the result equals an uninterrupted run. A source that failed for a reason
that may not last (ffmpeg killed or interrupted, disk full, permission or I/O error) is not
skipped: it is listed, the command exits 1, and a rerun tries it again. The command also exits 1
when no pair was made, and 2 for a usage error (unknown type, missing input, ...).

Examples::

    ssvqa build-distortion-pairs videos/ --output-dir pairs/
    ssvqa build-distortion-pairs videos.txt -o pairs/ --types h264,gaussian_blur,noise --num-proc 8
    ssvqa build-distortion-pairs user/raw-videos -o pairs/ --shard-index 0 --num-shards 4 \\
        --push-to-hub user/distortion-pairs
    python -c "import datasets; print(datasets.load_dataset('pairs/'))"

Length: over 400 lines, a quarter of it this description and the dataset card's text. The rest is
the rule for distortion pairs and the build.
"""

from __future__ import annotations

import difflib
import functools
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ssvqa.distortions import CATALOGUE, Variant, probe_source, reference_size, render_variants, ssim_many, unsupported
from ssvqa.hub import HubPush
from ssvqa.errors import UsageError, VideoError
from ssvqa.labels import LEVELS, SIMILAR, level_prob
from ssvqa.pairs.card import DatasetCardInfo
from ssvqa.pairs.dataset import PairRow, check_test_fraction, split_for, write_pair_dataset
from ssvqa.pairs.report import BuildReport, level_counts
from ssvqa.pairs.resumable import fingerprint_of, run_resumable
from ssvqa.pairs.sources import InputItem, gather_inputs
from ssvqa.video import content_hash, probe

DEFAULT_MAX_PIXELS = 640 * 360
SIMILAR_SSIM = 0.999  # a variant at least this close to the reference is "similar" to it
RESULT_VERSION = 2  # bump when the per-source results change meaning: older ones are redone


@dataclass(frozen=True)
class DistortionPairsConfig:
    """What the pairs of one source depend on (not where they go or how fast they are made).

    Args:
        types: candidate distortion names (empty: the whole catalogue).
        types_per_source: how many of them each source gets (all when fewer candidates).
        levels: ladder levels to render (empty: every level of each type).
        composed: extra variants per source composing two of its types.
        seed: seeds type choices, composed variants, noise and pair orientation.
        max_pixels: the reference is scaled down to fit this many pixels (``None``: keep size).
        threads: ffmpeg threads per source (results do not depend on it).
    """

    types: tuple[str, ...] = ()
    types_per_source: int = 3
    levels: tuple[int, ...] = ()
    composed: int = 0
    seed: int = 0
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    threads: int = field(default=1, compare=False)

    def __post_init__(self):
        for name in self.types:
            check_type(name)
        if self.types_per_source < 1:
            raise UsageError("types_per_source must be >= 1")
        if self.composed < 0:
            raise UsageError("composed must be >= 0")
        for name in self.candidates:
            for level in self.levels:
                if not 1 <= level <= CATALOGUE[name].num_levels:
                    raise UsageError(f"level {level}: {name} has levels 1..{CATALOGUE[name].num_levels} (1 = mildest)")

    @property
    def candidates(self) -> list[str]:
        return sorted(self.types) if self.types else sorted(CATALOGUE)

    def fingerprint(self) -> str:
        settings = {k: v for k, v in asdict(self).items() if k != "threads"}
        return fingerprint_of({"version": RESULT_VERSION, **settings})


def check_type(name: str) -> str:
    """``name`` when it is a distortion of the catalogue; else a UsageError suggesting close
    names ("unknown distortion type 'blurr' (did you mean gaussian_blur?); known: ...")."""
    if name in CATALOGUE:
        return name
    # Names and their parts ("blur" of gaussian_blur), so a mistyped part finds the whole name.
    aliases = {alias: known for known in CATALOGUE for alias in (known, *known.split("_"))}
    close = list(dict.fromkeys(aliases[a] for a in difflib.get_close_matches(name, aliases, n=3, cutoff=0.6)))
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise UsageError(f"unknown distortion type {name!r}{hint}; known: {', '.join(CATALOGUE)}")


# --------------------------------------------------------------------------- one source


def level_for_gap(gap: int) -> int:
    """The level of a pair whose *second* video is less distorted by ``gap`` severity steps.

    >>> [LEVELS[level_for_gap(g)] for g in (1, 2, 4)]
    ['better', 'superior', 'superior']
    """
    if gap < 1:
        raise ValueError("gap must be >= 1")
    return LEVELS.index("better") if gap == 1 else LEVELS.index("superior")


def dominates(u: Variant, v: Variant) -> bool:
    """True when ``u`` is no more distorted than ``v`` in any distortion, and less in one."""
    names = {name for name, _ in u.steps} | {name for name, _ in v.steps}
    return all(u.severity(n) <= v.severity(n) for n in names) and any(u.severity(n) < v.severity(n) for n in names)


def severity_gap(better: Variant, worse: Variant) -> int:
    names = {name for name, _ in better.steps} | {name for name, _ in worse.steps}
    return sum(worse.severity(n) - better.severity(n) for n in names)


def plan_variants(
    rng: random.Random, config: DistortionPairsConfig, size: tuple[int, int] | None = None
) -> tuple[list[str], list[Variant]]:
    """The distortion types of one source and its variants (pristine first).

    With the reference's ``size`` (width, height), types that cannot be rendered at that size
    (:func:`ssvqa.distortions.unsupported`: h265 under 64 px a side) are not drawn.
    """
    candidates = [name for name in config.candidates if size is None or unsupported(name, size) is None]
    types = sorted(rng.sample(candidates, min(config.types_per_source, len(candidates))))
    variants = [Variant(())]
    for name in types:
        levels = config.levels or range(1, CATALOGUE[name].num_levels + 1)
        variants += [Variant(((name, level),)) for level in levels]
    for _ in range(config.composed if len(types) >= 2 else 0):
        pair = rng.sample(types, 2)
        # Filters first and the codec last, as a camera then an encoder would.
        pair.sort(key=lambda n: CATALOGUE[n].family == "compression")
        steps = tuple((n, rng.choice(config.levels or range(1, CATALOGUE[n].num_levels + 1))) for n in pair)
        if Variant(steps) not in variants:
            variants.append(Variant(steps))
    return types, variants


def make_pairs(variants: Sequence[Variant], ssim: dict[str, float], rng: random.Random) -> list[dict[str, Any]]:
    """Labelled, randomly oriented pairs among one source's variants (see the module doc).

    ``ssim`` maps each variant name to its SSIM against the reference (``variants[0]``).
    """
    reference = variants[0]
    unchanged = [v for v in variants[1:] if ssim[v.name] >= SIMILAR_SSIM]
    effective = {v.name: _effective(v, ssim) for v in variants}
    pairs = []
    for v in unchanged:
        first, second = (reference, v) if rng.random() < 0.5 else (v, reference)
        pairs.append(_pair(first, second, SIMILAR, 0, ssim, effective))
    distinct = [v for v in variants if v not in unchanged]
    for i, u in enumerate(distinct):
        for v in distinct[i + 1 :]:
            eu, ev = effective[u.name], effective[v.name]
            if eu == ev:  # they differ only by steps that change nothing on this content
                first, second, level, gap = u, v, SIMILAR, 0
            elif dominates(eu, ev) or dominates(ev, eu):
                better, worse = (u, v) if dominates(eu, ev) else (v, u)
                gap = severity_gap(effective[better.name], effective[worse.name])
                level = level_for_gap(gap)  # the level when the better one comes second
                first, second = worse, better
            else:
                continue  # different distortions: their order is not known
            if rng.random() < 0.5:
                first, second, level = second, first, len(LEVELS) - 1 - level
            pairs.append(_pair(first, second, level, gap, ssim, effective))
    return pairs


def _effective(variant: Variant, ssim: dict[str, float]) -> Variant:
    """``variant`` without the steps that, alone at their level, leave this content unchanged
    (SSIM >= SIMILAR_SSIM): e.g. a frame-rate step on a static scene counts as severity 0."""
    kept = tuple(step for step in variant.steps if ssim.get(Variant((step,)).name, 0.0) < SIMILAR_SSIM)
    return Variant(kept)


def _pair(a: Variant, b: Variant, level: int, gap: int, ssim: dict[str, float], effective: dict) -> dict[str, Any]:
    names = sorted({name for name, _ in a.steps} | {name for name, _ in b.steps})
    single = len(names) == 1
    ignored = sorted({f"{n}-{l}" for v in (a, b) for n, l in v.steps if (n, l) not in effective[v.name].steps})
    provenance = {
        "distortion": "+".join(names),
        "family": CATALOGUE[names[0]].family if single else "composed",
        "variant_a": a.name,
        "variant_b": b.name,
        "level_a": a.severity(names[0]) if single else None,
        "level_b": b.severity(names[0]) if single else None,
        "gap": gap,
        "ssim_a": round(ssim[a.name], 5),
        "ssim_b": round(ssim[b.name], 5),
    }
    if ignored:
        provenance["unchanged_steps"] = ignored
    return {"a": a.name, "b": b.name, "label": LEVELS[level], "prob": level_prob(level), "provenance": provenance}


def process_source(item: InputItem, out_dir: Path, *, config: DistortionPairsConfig) -> dict[str, Any]:
    """The worker: render one source's variants into ``out_dir`` and label its pairs.

    Raises:
        VideoError: the source is unusable (the builder lists it as skipped with the reason).
    """
    info = probe(item.path)  # decodes the index: 0-byte, truncated, audio-only files fail here
    source = probe_source(item.path)
    size = reference_size(source.width, source.height, config.max_pixels)
    reasons = [unsupported(name, size) for name in config.candidates]
    if all(reasons):
        raise VideoError(item.path, "; ".join(reasons))
    sha = content_hash(item.path)
    content_id = sha[:16]
    rng = random.Random(f"{config.seed}:{sha}")
    types, variants = plan_variants(rng, config, size)
    noise_seed = (int(sha[:8], 16) + config.seed) % 2**31
    rendered = render_variants(
        item.path, variants, out_dir, seed=noise_seed, max_pixels=config.max_pixels, threads=config.threads
    )
    scores = ssim_many(rendered[0], rendered[1:], threads=config.threads)
    ssim = {variants[0].name: 1.0, **{v.name: s for v, s in zip(variants[1:], scores)}}
    files = {}
    for variant, path in zip(variants, rendered):
        # Embedded videos keep only their base name: make it say which content and variant.
        final = path.with_name(f"{content_id}_{variant.name}.mp4")
        os.replace(path, final)
        files[variant.name] = final.name
    pairs = make_pairs(variants, ssim, rng)
    for pair in pairs:
        pair["provenance"].update(source=item.name, source_sha256=sha, seed=config.seed)
    return {
        "source": item.name,
        "sha256": sha,
        "content_id": content_id,
        "width": info.width,
        "height": info.height,
        "fps": round(info.fps, 3),
        "num_frames": info.num_frames,
        "types": types,
        "variants": [{"name": v.name, "file": files[v.name], "ssim": round(ssim[v.name], 5)} for v in variants],
        "pairs": pairs,
    }


# --------------------------------------------------------------------------- the whole build


@dataclass
class DistortionPairsReport(BuildReport):
    """What a distortion-pair build did (:class:`~ssvqa.pairs.report.BuildReport`)."""

    sources: int = 0  # sources with pairs, this shard
    ran: int = 0  # sources processed by this run
    reused: int = 0  # sources finished by an earlier run

    def headline(self) -> str:
        return (f"Distortion pairs{self.shard()}: {self.num_pairs} pairs from {self.sources} sources in {self.seconds:.1f} s "
                f"({self.ran} sources processed now, {self.reused} reused from an earlier run).")


def build_distortion_pairs(
    inputs: str | Path | Sequence[str | Path],
    output_dir: str | Path,
    *,
    types: Sequence[str] | None = None,
    types_per_source: int = 3,
    levels: Sequence[int] | None = None,
    composed: int = 0,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    threads: int = 1,
    num_proc: int = 1,
    shard_index: int = 0,
    num_shards: int = 1,
    video_column: str = "video",
    work_dir: str | Path | None = None,
    license: str = "other",
    push_to_hub: str | HubPush | None = None,
) -> DistortionPairsReport:
    """Build (or resume building) this shard of a distortion-pair dataset into ``output_dir``.

    ``inputs`` is anything :func:`ssvqa.pairs.sources.collect_inputs` reads, or a list of video paths.
    The other arguments are the command's options (``--help``). Returns what was done; the
    dataset is a folder ``datasets.load_dataset(output_dir)`` reads, pushed to ``push_to_hub`` (a
    dataset repo id, or a :class:`~ssvqa.hub.HubPush` naming a branch) when given.
    """
    check_test_fraction(test_fraction)  # before any work
    start = time.monotonic()
    output_dir = Path(output_dir)
    work_dir = Path(work_dir) if work_dir is not None else output_dir / ".work"
    config = DistortionPairsConfig(
        types=tuple(types or ()),
        types_per_source=types_per_source,
        levels=tuple(levels or ()),
        composed=composed,
        seed=seed,
        max_pixels=max_pixels,
        threads=threads,
    )
    unique, rejected = gather_inputs(inputs, output_dir, work_dir=work_dir, video_column=video_column,
                                     shard_index=shard_index, num_shards=num_shards)

    mapped = run_resumable(
        unique,
        functools.partial(process_source, config=config),
        work_dir=work_dir,
        num_proc=num_proc,
        fingerprint=config.fingerprint(),
        desc="sources",
    )

    rows = []
    for done in mapped.finished:  # sorted by key: the row order never depends on timing
        result = done.result
        files = {v["name"]: done.files / v["file"] for v in result["variants"]}
        for pair in result["pairs"]:
            rows.append(
                PairRow(
                    video_a=str(files[pair["a"]]),
                    video_b=str(files[pair["b"]]),
                    label=pair["label"],
                    prob=pair["prob"],
                    origin="distortion",
                    content_id=result["content_id"],
                    provenance=pair["provenance"],
                )
            )
    skipped = sorted([*rejected, *(s for s in mapped.skipped if s.final)], key=lambda s: s.key)
    arguments = {
        "inputs": [str(p) for p in inputs] if not isinstance(inputs, (str, Path)) else str(inputs),
        "video_column": video_column,
        **{k: v for k, v in asdict(config).items() if k != "threads"},
        "test_fraction": test_fraction,
        "num_shards": num_shards,
    }
    write_pair_dataset(
        rows,
        output_dir,
        card=_card(config, arguments, license),
        test_fraction=test_fraction,
        seed=seed,
        shard_index=shard_index,
        num_shards=num_shards,
        skipped=[s.to_dict() for s in skipped],
    )
    report = DistortionPairsReport(
        output_dir=output_dir,
        counts=level_counts((split_for(row.content_id, test_fraction, seed), row.label_index) for row in rows),
        sources=len(mapped.finished),
        skipped=[s.to_dict() for s in skipped],
        ran=mapped.ran,
        reused=mapped.reused,
        seconds=time.monotonic() - start,
        shard_index=shard_index,
        num_shards=num_shards,
        retry=[s.to_dict() for s in mapped.skipped if not s.final],
    )
    if push_to_hub and report.complete:  # an unfinished shard is pushed by the rerun that finishes it
        report.commit_url = HubPush.of(push_to_hub).push(output_dir, f"Distortion pairs, shard {shard_index + 1} of {num_shards}")
    return report


def _card(config: DistortionPairsConfig, arguments: dict[str, Any], license: str) -> DatasetCardInfo:
    method = f"""
Every source video is rendered as a pristine reference (constant frame rate, scaled to fit
{config.max_pixels or 'its own'} pixels, near-losslessly encoded) and as ladders of synthetic
distortions at increasing severity, with ffmpeg (`ssvqa.distortions`). Each source gets
{config.types_per_source} distortion type(s) drawn (seeded by its content hash) from the catalogue
below{' and ' + str(config.composed) + ' composed variant(s) mixing two of them' if config.composed else ''}.

Labels come from construction, not from annotators. A variant *u* is better than *v* when *u* is
no more distorted than *v* in every distortion and less in one (the pristine reference has
severity 0; within one ladder this is the level order). The severity gap sets the level:
gap 1 (adjacent levels, or pristine vs level 1) gives `better`/`worse`; a gap of 2 or more
gives `superior`/`inferior`. A variant that its distortion left unchanged on the content
(SSIM >= {SIMILAR_SSIM} against the reference, e.g. dropped frames of a static scene) is paired
with the reference only, labelled `similar`; in composed variants such a step counts as severity
0, and two variants differing only by such steps are `similar`; no other pair is `similar`
(`unchanged_steps` in the provenance names them). Which video comes first
is drawn at random (seeded), so levels are balanced around `similar`; `prob` is the level's
weight. `provenance` records the distortion, family, variant names, levels, severity gap, the
SSIM of each video against the reference, and the source's name and SHA-256.

The split is by content: `content_id` is the first 16 hex digits of the source's SHA-256, and a
hash of it decides train or test, so identical sources always share a split.
"""
    candidates = config.candidates
    table = ["| distortion | family | levels (1 = mildest) | description |", "|---|---|---|---|"]
    for name in candidates:
        d = CATALOGUE[name]
        table.append(f"| `{name}` | {d.family} | {', '.join(str(v) for v in d.levels)} | {d.description} |")
    if config.levels:
        table += ["", f"Levels rendered: {', '.join(map(str, config.levels))}."]
    return DatasetCardInfo(
        pretty_name="Distortion pairs for video quality ranking",
        builder="ssvqa build-distortion-pairs (ssvqa.pairs.distortion)",
        arguments=arguments,
        method=method,
        sections={"Distortion catalogue": "\n".join(table)},
        license=license,
        tags=["synthetic-distortions"],
    )
