"""Scores from quality models that run elsewhere (FAST-VQA, DOVER, Q-Align, MinimalisticVQA …).

The teachers of the paper run in their own repositories with their own environments. Run them
there, save one score per video, and bring the file: ``--teacher-scores NAME=PATH_OR_REPO`` of
``ssvqa build-pseudo-pairs`` (``recipes/README.md`` shows how with each teacher's own scripts).
The scores then join the ensemble like a built-in teacher: aligned to the reference with the
4-parameter logistic, averaged, and named ``NAME`` in every pair's provenance.

A score file is CSV/TSV/TXT (with a header), JSON (a list of objects, or an object mapping video
to score), JSON lines or Parquet, or a Hub dataset with such columns. The video column is the
first of ``video, name, path, file, filename`` present, the score column the first of
``score, mos, pred, prediction, quality``. Higher must mean better (negate a distortion measure).

How a file's video names meet the inputs: an entry equal to the input's own name (its path
relative to the input folder, or the list/dataset entry) first; otherwise an entry naming the end
of that path (``b/x.mp4`` or ``x.mp4`` or ``x`` for ``a/b/x.mp4``). An input that two entries
match is an error, never a guess.
Inputs without a score and score entries that match no input are both reported by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ssvqa.errors import SsvqaError

NAME_COLUMNS = ("video", "name", "path", "file", "filename")
SCORE_COLUMNS = ("score", "mos", "pred", "prediction", "quality")


@dataclass
class ExternalScores:
    """One external teacher's scores: ``name`` (its name in provenance), ``scores`` (file entry ->
    score), ``source`` (where they came from)."""

    name: str
    scores: dict[str, float]
    source: str

    @classmethod
    def from_spec(cls, spec: str) -> ExternalScores:
        """``NAME=PATH_OR_REPO``: a local score file, or a Hub dataset id (``NAME=org/dataset``)."""
        name, sep, target = spec.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise SsvqaError(f"--teacher-scores takes NAME=PATH_OR_REPO, got {spec!r}")
        return cls.load(name.strip(), target.strip())

    @classmethod
    def load(cls, name: str, target: str, *, revision: str | None = None) -> ExternalScores:
        path = Path(target)
        if path.is_file():
            return cls(name, _read_file(path), str(path))
        if path.exists() or _looks_local(target):
            raise SsvqaError(f"teacher {name}: score file {target} is not a readable file")
        return cls(name, _read_hub(target, revision), f"hf://datasets/{target}")

    def match(self, inputs: Mapping[str, str]) -> Matched:
        """Scores for ``inputs`` (key -> the input's name); see the module doc for the rule."""
        entries = {entry: PurePosixPath(entry.replace("\\", "/")).parts for entry in self.scores}
        matched = Matched()
        used: set[str] = set()
        for key, input_name in inputs.items():
            parts = PurePosixPath(input_name.replace("\\", "/")).parts
            candidates = [e for e, p in entries.items() if p == parts]
            if not candidates:  # an entry naming the tail of the input's path, with or without extension
                candidates = [e for e, p in entries.items() if _is_tail(p, parts)]
            if len(candidates) > 1:
                raise SsvqaError(f"teacher {self.name}: {input_name} matches {len(candidates)} entries of "
                                 f"{self.source} ({', '.join(sorted(candidates)[:3])}): name the videos by path")
            if not candidates:
                matched.missing.append(input_name)
            else:
                matched.scores[key] = self.scores[candidates[0]]
                used.add(candidates[0])
        matched.unknown = sorted(set(self.scores) - used)
        return matched


def _is_tail(entry: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """``entry`` names the last parts of ``parts``; its last part may leave out the extension."""
    if not entry or len(entry) > len(parts):
        return False
    tail = parts[len(parts) - len(entry):]
    return entry[:-1] == tail[:-1] and entry[-1] in (tail[-1], PurePosixPath(tail[-1]).stem)


@dataclass
class Matched:
    """What :meth:`ExternalScores.match` found: ``scores`` (input key -> score), ``missing``
    (input names the file has no score for), ``unknown`` (file entries that match no input)."""

    scores: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _looks_local(target: str) -> bool:
    """A mistyped local path must not be sent to the Hub (a repo id is ``org/name``, no suffix)."""
    return (target.startswith((".", "/", "~")) or target.count("/") != 1
            or Path(target).suffix.lower() in (".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet"))


def _read_file(path: Path) -> dict[str, float]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return _from_rows(pq.read_table(path).to_pylist(), str(path))
    from ssvqa.benchmarks import read_labels

    rows = read_labels(path, name_column=NAME_COLUMNS, score_column=SCORE_COLUMNS)
    return _checked({row["name"]: row["mos"] for row in rows}, str(path), len(rows))


def _read_hub(repo_id: str, revision: str | None) -> dict[str, float]:
    import datasets

    dataset = datasets.load_dataset(repo_id, split="train", revision=revision)
    columns = [c for c in dataset.column_names if not isinstance(dataset.features[c], datasets.Video)]
    return _from_rows(dataset.select_columns(columns).to_list(), repo_id)


def _from_rows(rows: Iterable[Mapping], source: str) -> dict[str, float]:
    rows = list(rows)
    keys = {k.lower(): k for row in rows[:1] for k in row}
    name_key = next((keys[c] for c in NAME_COLUMNS if c in keys), None)
    score_key = next((keys[c] for c in SCORE_COLUMNS if c in keys), None)
    if name_key is None or score_key is None:
        raise SsvqaError(f"{source}: needs a video column ({', '.join(NAME_COLUMNS)}) and a score column "
                         f"({', '.join(SCORE_COLUMNS)}); it has {', '.join(keys.values()) or 'none'}")
    return _checked({str(row[name_key]): row[score_key] for row in rows}, source, len(rows))


def _checked(scores: dict[str, object], source: str, rows: int) -> dict[str, float]:
    if len(scores) != rows:
        raise SsvqaError(f"{source}: {rows - len(scores)} video(s) are listed twice")
    result = {}
    for name, value in scores.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise SsvqaError(f"{source}: the score of {name} is not a finite number ({json.dumps(value, default=str)})")
        result[name] = number
    if not result:
        raise SsvqaError(f"{source}: no scores")
    return result
