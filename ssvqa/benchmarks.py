"""Human-rated VQA benchmarks as ``datasets.Dataset``: one row per video with its MOS.

``load_benchmark(name, root, split=None)`` reads a benchmark's own label file, in the format its
authors released, from a local copy of the benchmark (nothing is downloaded: these datasets come
with their own licences and request forms). Every benchmark gives the same columns:

* ``video`` -- absolute path of the video file (a string; decode it with :mod:`ssvqa.video`),
* ``mos`` -- the mean opinion score on the benchmark's *native* scale (float; e.g. 1–5 for
  KoNViD-1k, 0–100 for LSVQ); correlation metrics do not care about the scale,
* ``mos_std`` -- the standard deviation of the ratings, when the label file has it,
* ``name`` -- the video's name as written in the label file.

Any other folder of videos with a label file (CSV, TSV, TXT, JSON, JSON lines, or .xlsx when
``openpyxl`` is installed) loads with :func:`load_labelled_folder`, naming the columns.

How a label's name becomes a file
---------------------------------
Label files name videos in many ways ("A001.mp4", "ia-batch1/xyz" without extension, a bare
Flickr id, a path relative to a subfolder the label file does not mention). A name is resolved
under ``root`` in this order, and the first rule that matches decides:

1. ``root / name`` is a file;
2. ``root / name`` plus a video extension (``.mp4``, ``.mkv``, ... ) is a file;
3. exactly one video under ``root`` (recursive) has the name's final part as its file name, or,
   when the name has no video extension, as its stem (also with the ``_orig`` suffix YouTube-UGC
   copies carry). Two or more candidates are an error naming them: guessing would silently pair
   a score with the wrong video.

A name that points outside ``root`` (``..``, an absolute path, or a symlink leading out) is
rejected with :class:`~ssvqa.errors.VideoError`: label files are data, and data must not choose
which files the program reads.

Missing videos
--------------
By default a label whose video is not found is an error (:class:`~ssvqa.errors.SsvqaError`)
that says how many are missing and lists the first ones, so a partial download is never
mistaken for the full benchmark. ``on_missing="skip"`` drops those rows instead and emits a
``UserWarning`` with the same count and list; the returned dataset's ``info.description`` records
how many were skipped.

Length: over 400 lines for one concept (where each benchmark keeps its scores and videos). A third
is the table of label formats, and the readers for the formats the benchmarks ship (CSV/TSV, JSON,
MATLAB, XLSX). Split, a benchmark's entry would sit away from the code that reads it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ssvqa.errors import SsvqaError, VideoError
from ssvqa.video import VIDEO_EXTENSIONS, is_within, list_videos

FEATURES = datasets.Features(
    {"video": datasets.Value("string"), "mos": datasets.Value("float64"), "name": datasets.Value("string")}
)
FEATURES_WITH_STD = datasets.Features({**FEATURES, "mos_std": datasets.Value("float64")})


@dataclass(frozen=True)
class LabelFormat:
    """Where a benchmark keeps its labels and which columns hold what.

    ``label_files`` maps a split name to candidate file names, tried in order and searched for
    anywhere under the benchmark root. ``alt_name_columns`` name a second way to find the video
    when the first name does not resolve. ``row_filter`` keeps, per split, the rows whose column
    has the given value (ignored when the file lacks that column: it then holds the split alone). Column candidates are matched after normalising header
    names (lower case, only letters and digits: "MOS full" == "mos_full" == "MOSfull"). An int
    selects a column by position (for header-less files).
    """

    label_files: dict[str, tuple[str, ...]]
    name_columns: tuple[str | int, ...]
    score_columns: tuple[str | int, ...]
    std_columns: tuple[str | int, ...] = ()
    alt_name_columns: tuple[str | int, ...] = ()
    default_split: str = "test"
    header: bool = True
    notes: str = ""
    row_filter: dict[str, dict[str, str]] = field(default_factory=dict)  # split -> {column: value}


# Formats of the benchmarks the paper evaluates on. Every entry cites what it is based on; where
# the authors' own file could not be checked the assumption is written down and the generic
# reader (or ``labels=``) covers other layouts.
BENCHMARKS: dict[str, LabelFormat] = {
    "konvid-1k": LabelFormat(
        label_files={"test": ("KoNViD_1k_attributes.csv", "KoNViD_1k_mos.csv")},
        name_columns=("flickr_id",),
        score_columns=("MOS",),
        std_columns=("SD", "MOS_std", "std"),
        alt_name_columns=("file_name",),
        notes=(
            "KoNViD_1k_attributes.csv (official metadata zip): columns flickr_id, MOS (1-5) and more; "
            "videos KoNViD_1k_videos/<flickr_id>.mp4 (how VSFA-style loaders build the path). A file_name "
            "column, when present, is used only if the flickr_id does not resolve. The std column name (SD) "
            "is an assumption; rows keep no std if none of the candidates exists."
        ),
    ),
    "live-vqc": LabelFormat(
        label_files={"test": ("data.mat", "LIVE_VQC_metadata.csv", "LIVE-VQC.csv", "LIVE_VQC.csv", "labels.csv")},
        name_columns=("video_list", "name", "File", "filename", "vid"),
        score_columns=("mos", "MOS"),
        std_columns=("std", "mos_std", "SD"),
        notes=(
            "data.mat (official): variables video_list (cell of 'A001.mp4', ...) and mos (0-100); videos in "
            "Video/. The CSV alternatives are the ones public repos export from it (name/File + mos)."
        ),
    ),
    "youtube-ugc": LabelFormat(
        label_files={
            "test": (
                "original_videos_MOS_for_YouTube_UGC_dataset.csv",
                "MOS_for_YouTube_UGC_dataset.csv",
                "YOUTUBE_UGC_metadata.csv",
                "original_videos_MOS_for_YouTube_UGC_dataset.xlsx",
                "MOS_for_YouTube_UGC_dataset.xlsx",
            )
        },
        name_columns=("vid", "name", "File"),
        score_columns=("MOS full", "MOSFull", "mos", "MOS"),
        std_columns=("MOS full std", "std", "SD"),
        notes=(
            "original_videos_MOS_for_YouTube_UGC_dataset.xlsx (official), sheet 'MOS': vid "
            "(e.g. 'Animation_1080P-01b3') and 'MOS full' (1-5) plus per-chunk MOS; videos "
            "<category>/<res>P/<vid>.mkv or <vid>_orig.mp4 (found by stem). The .xlsx needs openpyxl; export "
            "the sheet to CSV (same columns) otherwise."
        ),
    ),
    "lsvq": LabelFormat(
        label_files={
            "test": ("labels_test.csv", "labels_train_test.csv"),
            "test_1080p": ("labels_test_1080p.csv",),
            "train": ("labels_train.csv", "labels_train_test.csv"),
        },
        name_columns=("name",),
        score_columns=("mos",),
        row_filter={"test": {"is_test": "true"}, "train": {"is_test": "false"}},
        notes=(
            "Official PatchVQ release: labels_train_test.csv (column is_test marks the 7,182 test videos) "
            "and labels_test_1080p.csv (3,573 videos); columns name (e.g. 'ia-batch1/<id>', no extension), "
            "p1..p3 patch boxes, mos (0-100), height, width, frame_number; videos <name>.mp4. Many repos "
            "split the first file into labels_test.csv / labels_train.csv: those are read first when present."
        ),
    ),
    "live-yt-gaming": LabelFormat(
        label_files={"test": ("LIVE-YT-Gaming_metadata.csv", "LIVE_YT_Gaming_metadata.csv", "LIVE-YT-Gaming_MOS.csv", "mos.csv")},
        name_columns=("File", "name", "filename", "video"),
        score_columns=("MOS", "mos"),
        std_columns=("std", "SD", "mos_std"),
        notes=(
            "Assumed: a metadata CSV with File and MOS (0-100) columns, as GAMIVAL's "
            "mos_files/LIVE-YT-Gaming_metadata.csv; videos <File> under root. The authors' original "
            "spreadsheet was not checked: pass labels= for another file."
        ),
    ),
    "cgvds": LabelFormat(
        label_files={"test": ("CGVDS_metadata.csv", "CGVDS_MOS.csv", "mos.csv")},
        name_columns=("File", "name", "filename", "video"),
        score_columns=("MOS", "mos"),
        std_columns=("std", "SD", "mos_std"),
        notes="Assumed: metadata CSV with File and MOS columns (GAMIVAL's mos_files/CGVDS_metadata.csv).",
    ),
    "kvq": LabelFormat(
        label_files={
            "train": ("train_data.csv",),
            "val": ("val_data.csv", "validation_data.csv", "val_truth.csv"),
            "test": ("test_data.csv", "test_truth.csv", "truth.csv"),
        },
        name_columns=("filename", "name", "video", 0),
        score_columns=("score", "mos", "MOS", 1),
        notes=(
            "NTIRE 2024 KVQ challenge files: a CSV with a header, video path (relative to the data "
            "folder, e.g. 'train/0001.mp4') first and score second, as the challenge's SimpleVQA loader "
            "reads them (row[0], row[1]). The val/test file names are assumptions: pass labels= if yours differ."
        ),
    ),
    "waterloo-ivc-4k": LabelFormat(
        label_files={"test": ("Waterloo_IVC_4K_MOS.csv", "WaterlooIVC4K_MOS.csv", "MOS.csv", "mos.csv")},
        name_columns=("name", "video", "File", "filename"),
        score_columns=("MOS", "mos"),
        std_columns=("std", "SD", "mos_std"),
        notes=(
            "Assumed: a CSV with video name and MOS columns exported from the database's score file "
            "(its original layout was not checked). Pass labels= and column names for another file."
        ),
    ),
    "live-yt-hfr": LabelFormat(
        label_files={"test": ("subject_MOS.csv",)},
        name_columns=("File Names",),
        score_columns=("MOS",),
        std_columns=("std",),
        notes=(
            "Official subjective_scores/subject_MOS.csv (github.com/pavancm/LIVE-HFR) is *transposed*: "
            "row 1 'File Names,<name>,...', row 2 'MOS,<value>,...' (0-100), row 3 'std,<value>,...'. "
            "Names have no extension ('1Runner_crf_0_24fps'); videos are found by stem."
        ),
    ),
}

_ALIASES = {re.sub(r"[^a-z0-9]", "", key): key for key in BENCHMARKS}


def benchmark_names() -> list[str]:
    """Names ``load_benchmark`` knows (case and punctuation are ignored when matching)."""
    return list(BENCHMARKS)


def load_benchmark(
    name: str,
    root: str | Path,
    *,
    split: str | None = None,
    labels: str | Path | None = None,
    on_missing: str = "error",
) -> datasets.Dataset:
    """A benchmark as a ``datasets.Dataset`` with ``video``, ``mos``, ``name`` (+ ``mos_std``).

    ``name`` is one of :func:`benchmark_names` ("KoNViD-1k", "LSVQ", ...); ``root`` the folder
    holding the benchmark's videos and label file (searched recursively for the known label file
    names); ``split`` one of the benchmark's splits (LSVQ: ``test``, ``test_1080p``, ``train``;
    KVQ: ``train``, ``val``, ``test``; the rest: ``test``), default its test split; ``labels``
    a label file to use instead of the search. ``on_missing``: see the module doc.
    """
    key = _ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))
    if key is None:
        raise SsvqaError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)} (or use load_labelled_folder)")
    fmt = BENCHMARKS[key]
    split = split or fmt.default_split
    if split not in fmt.label_files:
        raise SsvqaError(f"{key} has no split {split!r}; it has {', '.join(fmt.label_files)}")
    root = Path(root)
    if not root.is_dir():
        raise SsvqaError(f"{key}: benchmark root {root} is not a folder")
    label_path = _label_path(root, labels) if labels is not None else _find_label_file(root, fmt.label_files[split], key)
    records = read_labels(
        label_path,
        name_column=fmt.name_columns,
        score_column=fmt.score_columns,
        std_column=fmt.std_columns or None,
        alt_name_column=fmt.alt_name_columns or None,
        header=fmt.header,
        row_filter=fmt.row_filter.get(split),
    )
    return _to_dataset(records, root, f"{key}/{split}", label_path, on_missing)


def load_labelled_folder(
    root: str | Path,
    labels: str | Path,
    *,
    name_column: str | int = "name",
    score_column: str | int = "mos",
    std_column: str | int | None = None,
    header: bool = True,
    benchmark: str = "custom",
    on_missing: str = "error",
) -> datasets.Dataset:
    """Any folder of videos plus a label file, as :func:`load_benchmark` returns it.

    ``labels`` is a CSV/TSV/TXT (header row unless ``header=False``; then columns are picked by
    position), JSON (a list of objects, or an object mapping name to score), JSON lines, .mat
    (variable names as columns) or .xlsx (needs openpyxl) file. A relative ``labels`` path is
    taken relative to ``root``. Example: the ``labels.txt`` files of FAST-VQA/DOVER
    ("name,_,_,score" without header) load with ``name_column=0, score_column=3, header=False``.
    """
    root = Path(root)
    label_path = _label_path(root, labels)
    records = read_labels(label_path, name_column=name_column, score_column=score_column, std_column=std_column, header=header)
    return _to_dataset(records, root, benchmark, label_path, on_missing)


def load_scored(
    spec: str | Path,
    *,
    split: str | None = None,
    name_column: str | int = "name",
    score_column: str | int = "mos",
    std_column: str | int | None = None,
    on_missing: str = "error",
) -> datasets.Dataset:
    """Scored videos named the way commands and recipes name them.

    ``spec`` is ``"NAME=ROOT"`` (a known benchmark, :func:`load_benchmark`), ``"NAME/SPLIT=ROOT"``
    (one of its splits, e.g. ``"lsvq/test_1080p=/data/LSVQ"``), or the path of a label file whose
    videos are in the file's folder (:func:`load_labelled_folder` with the column options).
    ``split`` names the benchmark's split too; it does not apply to a label file.
    """
    text = str(spec)
    name, sep, root = text.partition("=")
    if sep and root:
        benchmark, _, named_split = name.partition("/")
        if named_split and split and named_split != split:
            raise SsvqaError(f"{text}: split {named_split!r} in the name but {split!r} asked")
        return load_benchmark(benchmark, root, split=split or named_split or None, on_missing=on_missing)
    path = Path(text)
    if not path.is_file():
        raise SsvqaError(f"{text}: neither NAME=ROOT (a benchmark) nor an existing label file")
    if split is not None:
        raise SsvqaError(f"a split applies to a named benchmark (NAME=ROOT), not to the label file {text}")
    return load_labelled_folder(path.parent, path.name, name_column=name_column, score_column=score_column,
                                std_column=std_column, on_missing=on_missing)


def read_labels(
    path: str | Path,
    *,
    name_column: str | int | tuple[str | int, ...],
    score_column: str | int | tuple[str | int, ...],
    std_column: str | int | tuple[str | int, ...] | None = None,
    alt_name_column: str | int | tuple[str | int, ...] | None = None,
    header: bool = True,
    row_filter: dict[str, str] | None = None,
) -> list[dict]:
    """Rows ``{"name": str, "mos": float[, "mos_std": float][, "alt_name": str]}`` in file order.

    Each ``*_column`` may be a tuple of candidates; the first present one is used (``std_column``
    and ``alt_name_column`` may match none: then rows do not carry them). ``row_filter`` maps a
    column to the value rows must have (case-insensitive; true/false also match 1/0); a filter
    column the file lacks is ignored. Rows with an empty score are an error naming the
    file and line: a benchmark with holes must be fixed, not quietly shortened.
    """
    path = Path(path)
    if not path.is_file():
        raise SsvqaError(f"label file {path} does not exist")
    table = _read_table(path, header)
    if not table.rows:
        raise SsvqaError(f"{path}: no label rows")
    name_idx = _column(table, name_column, path, required=True)
    score_idx = _column(table, score_column, path, required=True)
    std_idx = _column(table, std_column, path, required=False) if std_column is not None else None
    alt_idx = _column(table, alt_name_column, path, required=False) if alt_name_column is not None else None
    filters = [
        (index, value.lower())
        for column, value in (row_filter or {}).items()
        if (index := _column(table, column, path, required=False)) is not None
    ]
    width = max(len(r) for r in table.rows)
    records = []
    for line, row in zip(table.lines, table.rows):
        row = list(row) + [""] * (width - len(row))  # ragged rows: missing cells are empty
        if any(str(row[i]).strip().lower() not in (value, _bool_alias(value)) for i, value in filters):
            continue
        name = str(row[name_idx]).strip()
        if not name:
            continue  # blank trailing lines of spreadsheets
        record = {"name": name, "mos": _number(row[score_idx], path, line, "score")}
        if std_idx is not None:
            record["mos_std"] = _number(row[std_idx], path, line, "std")
        if alt_idx is not None and str(row[alt_idx]).strip():
            record["alt_name"] = str(row[alt_idx]).strip()
        records.append(record)
    if not records:
        raise SsvqaError(f"{path}: no rows left after the split filter {row_filter}")
    return records


# --- label files -----------------------------------------------------------------------------------


@dataclass
class _Table:
    columns: list[str]  # normalised header names ("" when the file has no header)
    rows: list[list]
    lines: list[int]  # line (or row) number of each row in the file, for error messages


def _normalise(column: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(column).lower())


def _read_table(path: Path, header: bool) -> _Table:
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return _read_mat(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, header)
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".jsonl":
        return _from_records([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()], path)
    return _read_delimited(path, header)


def _read_delimited(path: Path, header: bool) -> _Table:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",\t;").delimiter
        except csv.Error:
            delimiter = ","
    raw = [(i + 1, row) for i, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter)) if any(c.strip() for c in row)]
    if not raw:
        return _Table([], [], [])
    if header:
        columns = [_normalise(c) for c in raw[0][1]]
        body = raw[1:]
        if len(body) <= 3 and columns and columns[0] == "filenames":
            # LIVE-YT-HFR's transposed layout: one row per field, one column per video.
            names = raw[0][1][1:]
            fields = {_normalise(row[0]): row[1:] for _, row in body}
            columns = ["filenames", *fields]
            rows = [[names[i], *(values[i] if i < len(values) else "" for values in fields.values())] for i in range(len(names))]
            return _Table(columns, rows, [i + 2 for i in range(len(rows))])
    else:
        columns, body = [], raw
    return _Table(columns, [row for _, row in body], [line for line, _ in body])


def _read_json(path: Path) -> _Table:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and all(not isinstance(v, (dict, list)) for v in data.values()):
        data = [{"name": k, "mos": v} for k, v in data.items()]  # {"a.mp4": 3.2, ...}
    if not isinstance(data, list):
        raise SsvqaError(f"{path}: expected a JSON list of objects or an object mapping name to score")
    return _from_records(data, path)


def _from_records(records: list, path: Path) -> _Table:
    if not all(isinstance(r, dict) for r in records):
        raise SsvqaError(f"{path}: every label entry must be an object")
    keys: list[str] = []
    for record in records:
        keys.extend(k for k in record if k not in keys)
    rows = [[record.get(k, "") for k in keys] for record in records]
    return _Table([_normalise(k) for k in keys], rows, list(range(1, len(rows) + 1)))


def _read_mat(path: Path) -> _Table:
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except NotImplementedError as err:  # MATLAB v7.3 files are HDF5
        raise SsvqaError(f"{path}: MATLAB v7.3 (HDF5) files are not readable with scipy; re-save with -v7 or export CSV") from err
    except ValueError as err:
        raise SsvqaError(f"{path}: not a readable .mat file ({err})") from err
    columns, values = [], []
    for key, value in mat.items():
        if key.startswith("__"):
            continue
        flat = _mat_column(value)
        if flat is not None:
            columns.append(key)
            values.append(flat)
    lengths = {len(v) for v in values}
    if not values or len(lengths) != 1:
        n = max(lengths, default=0)
        keep = [(c, v) for c, v in zip(columns, values) if len(v) == n]
        columns, values = [c for c, _ in keep], [v for _, v in keep]
    rows = [list(r) for r in zip(*values)] if values else []
    return _Table([_normalise(c) for c in columns], rows, list(range(1, len(rows) + 1)))


def _mat_column(value) -> list | None:
    """A MATLAB variable as a flat list of str/float, or None when it is not one column."""
    import numpy as np

    if not isinstance(value, np.ndarray) or value.ndim > 2 or (value.ndim == 2 and min(value.shape) != 1):
        return None
    flat = value.reshape(-1)
    if flat.dtype == object:  # cell array: each element is a 1-element char array (or nested)
        out = []
        for item in flat:
            while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
                item = item.reshape(-1)[0]
            out.append(str(item.reshape(-1)[0]) if isinstance(item, np.ndarray) and item.size else str(item))
        return out
    if flat.dtype.kind in "US":
        return [str(v) for v in flat]
    if flat.dtype.kind in "fiu":
        return [float(v) for v in flat]
    return None


def _read_xlsx(path: Path, header: bool) -> _Table:
    if importlib.util.find_spec("openpyxl") is None:
        raise SsvqaError(
            f"{path}: reading .xlsx needs openpyxl, which is not installed; export the sheet with the MOS "
            f"to CSV (same column names) next to it and load that instead"
        )
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    sheet = workbook["MOS"] if "MOS" in workbook.sheetnames else workbook.worksheets[0]
    raw = [(i + 1, ["" if c is None else c for c in row]) for i, row in enumerate(sheet.iter_rows(values_only=True))]
    raw = [(i, r) for i, r in raw if any(str(c).strip() for c in r)]
    if header and raw:
        return _Table([_normalise(c) for c in raw[0][1]], [r for _, r in raw[1:]], [i for i, _ in raw[1:]])
    return _Table([], [r for _, r in raw], [i for i, _ in raw])


def _column(table: _Table, wanted, path: Path, *, required: bool) -> int | None:
    candidates = wanted if isinstance(wanted, tuple) else (wanted,)
    width = max((len(r) for r in table.rows), default=0)
    for candidate in candidates:
        if isinstance(candidate, int):
            if candidate < width:
                return candidate
            continue
        key = _normalise(candidate)
        if key in table.columns:
            return table.columns.index(key)
    if required:
        have = ", ".join(c for c in table.columns if c) or f"{width} unnamed columns"
        raise SsvqaError(f"{path}: none of the columns {list(candidates)} found (the file has: {have})")
    return None


def _number(value, path: Path, line: int, what: str) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise SsvqaError(f"{path}, line {line}: {what} {value!r} is not a number") from None
    if math.isnan(number):
        raise SsvqaError(f"{path}, line {line}: {what} is empty or NaN")
    return number


def _bool_alias(value: str) -> str:
    return {"true": "1", "false": "0", "1": "true", "0": "false"}.get(value, value)


def _label_path(root: Path, labels: str | Path) -> Path:
    """A label file given by the caller: as is, or relative to the benchmark root."""
    path = Path(labels)
    return path if path.is_absolute() or path.exists() else root / path


def _find_label_file(root: Path, candidates: tuple[str, ...], benchmark: str) -> Path:
    # One walk over the tree (benchmarks hold tens of thousands of files), then candidates in order.
    wanted, found_by_name = set(candidates), {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if file in wanted:
                found_by_name.setdefault(file, []).append(Path(folder) / file)
    for name in candidates:
        found = [p for p in found_by_name.get(name, []) if is_within(p, root)]
        if not found:
            continue
        found.sort(key=lambda p: (len(p.relative_to(root).parts), str(p)))  # shallowest first
        if found[0].suffix.lower() == ".xlsx" and importlib.util.find_spec("openpyxl") is None:
            raise SsvqaError(
                f"{benchmark}: only {found[0]} found, and reading .xlsx needs openpyxl (not installed); export its "
                f"MOS sheet to {found[0].with_suffix('.csv').name} (same columns) and load again"
            )
        return found[0]
    raise SsvqaError(f"{benchmark}: no label file under {root} (looked for {', '.join(candidates)}); pass labels=")


# --- videos ----------------------------------------------------------------------------------------


class _VideoIndex:
    """Finds the file a label names under ``root`` (rules in the module doc)."""

    def __init__(self, root: Path):
        self.root = root
        self._by_name: dict[str, list[Path]] | None = None
        self._by_stem: dict[str, list[Path]] = {}

    def _build(self) -> None:
        self._by_name = {}
        for path in list_videos(self.root):
            self._by_name.setdefault(path.name, []).append(path)
            self._by_stem.setdefault(path.stem, []).append(path)
            if path.stem.endswith("_orig"):
                self._by_stem.setdefault(path.stem[: -len("_orig")], []).append(path)

    def resolve(self, name: str) -> Path | None:
        candidate = self.root / name  # an absolute name stays absolute: fine if it is inside root
        if not is_within(candidate, self.root):
            raise VideoError(name, f"label names a path outside the benchmark root {self.root}")
        if candidate.is_file():
            return self._checked(candidate, name)
        for ext in VIDEO_EXTENSIONS:
            with_ext = candidate.with_name(candidate.name + ext)
            if with_ext.is_file():
                return self._checked(with_ext, name)
        if self._by_name is None:
            self._build()
        base = Path(name).name
        matches = self._by_name.get(base, []) if Path(base).suffix.lower() in VIDEO_EXTENSIONS else []
        matches = matches or self._by_stem.get(base, [])
        if len(matches) > 1:
            shown = ", ".join(str(p.relative_to(self.root)) for p in matches[:4])
            raise SsvqaError(f"label {name!r} matches {len(matches)} videos under {self.root} ({shown}); make names unique")
        return self._checked(matches[0], name) if matches else None

    def _checked(self, path: Path, name: str) -> Path:
        if not is_within(path, self.root):
            raise VideoError(name, f"resolves to {os.path.realpath(path)}, outside the benchmark root {self.root}")
        return path.absolute()


def _to_dataset(records: list[dict], root: Path, benchmark: str, label_path: Path, on_missing: str) -> datasets.Dataset:
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    index = _VideoIndex(root)
    kept, missing = [], []
    for record in records:
        path = index.resolve(record["name"])
        if path is None and "alt_name" in record:
            path = index.resolve(record["alt_name"])
        if path is None:
            missing.append(record["name"])
        else:
            kept.append({**record, "video": str(path)})
    if missing:
        listed = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        message = f"{benchmark}: {len(missing)} of {len(records)} labelled videos not found under {root}: {listed}"
        if on_missing == "error":
            raise SsvqaError(message + " (pass on_missing='skip' to load the rest)")
        warnings.warn(message + "; skipped", UserWarning, stacklevel=3)
    if not kept:
        raise SsvqaError(f"{benchmark}: none of the {len(records)} labelled videos found under {root}")
    has_std = all("mos_std" in r for r in kept)
    features = FEATURES_WITH_STD if has_std else FEATURES
    columns = {key: [r[key] for r in kept] for key in features}
    description = f"{benchmark}: {len(kept)} videos, labels from {label_path}"
    if missing:
        description += f"; {len(missing)} labelled videos missing and skipped"
    return datasets.Dataset.from_dict(columns, features=features, info=datasets.DatasetInfo(description=description, features=features))
