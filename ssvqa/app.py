"""A browser page to score and compare videos with a ranker (Gradio; ``pip install "ssvqa[app]"``).

:func:`build_app` wraps a :class:`ssvqa.scorer.QualityScorer` in a page with three parts, each a
thin call into the scorer (no scoring logic lives here):

* **Score videos**: upload one or more videos; a table of 0–100 scores (and the reason for each
  file that could not be scored), a chart of each video's preference against every anchor, and,
  with a segment length, each video's score over time
  (:meth:`~ssvqa.scorer.QualityScorer.score_details`).
* **Compare two videos**: the five-level distribution for the second video against the first,
  and for the first against the second (the pair asked in both orders) (:meth:`~ssvqa.scorer.QualityScorer.compare_pair`).
* **Score a folder**: upload a folder; a sortable table of scores with a CSV download.

Each part has an API name (``/score``, ``/compare``, ``/score_folder``) that ``gradio_client``
calls. A bad file never raises: its reason is shown in the table or in the message line.

The ``ssvqa app`` command is :mod:`ssvqa.commands.app`; ``app.py`` at the repository
root is the same page for a Hugging Face Space (model from ``SSVQA_MODEL``). Gradio's usage
analytics are switched off before it is imported.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ssvqa.errors import SsvqaError
from ssvqa.labels import LEVELS

DEFAULT_OUTPUT_DIR = "outputs/tiny-rounds"  # the demo's output_dir (recipes/tiny/round.yaml)
NO_NETWORK_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1"}


def default_model(output_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR) -> Path:
    """The newest demo model that has anchors (``output_dir/round-k/model`` with ``anchors.json``).

    Raises:
        SsvqaError: there is none yet (the message says how to make one or pass ``--model``).
    """
    from ssvqa.scorer import ANCHORS_FILE

    found = sorted(Path(output_dir).glob(f"round-*/model/{ANCHORS_FILE}"), key=lambda p: int(p.parts[-3].split("-")[-1]))
    if not found:
        raise SsvqaError(
            f"no trained demo model in {output_dir}/round-*/model: run `bash run.sh demo` first "
            "(about an hour on a laptop CPU), or pass --model with a ranker folder or Hub id (and --anchors)"
        )
    return found[-1].parent


def gradio():
    """The ``gradio`` module, imported with its usage analytics off; a clear error without it."""
    for key, value in NO_NETWORK_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import gradio as gr
    except ImportError as err:
        raise SsvqaError('the app needs Gradio: pip install "ssvqa[app]"') from err
    return gr


def theme():
    """Gradio's default look with the system's fonts: the page loads nothing from the internet."""
    gr = gradio()
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def build_app(scorer, *, preload: Sequence[str | os.PathLike] = (), preload_segments: float | None = None, title: str = "ssvqa"):
    """The page (a ``gradio.Blocks``) for ``scorer``; launch it with ``.launch(theme=theme())``.

    ``preload``: videos put in the inputs and scored (the first two also compared) before the
    page is served, so it opens with their results; ``preload_segments`` fills the segment length.
    """
    import pandas as pd

    gr = gradio()

    def score(files, segments):
        paths = _paths(files)
        if not paths:
            return _table([]), _empty_preferences(), _empty_curve(), "Upload one or more videos."
        seconds = float(segments) if segments else None
        if seconds is not None and seconds <= 0:
            return _table([]), _empty_preferences(), _empty_curve(), "The segment length must be positive."
        try:
            results, errors = scorer.score_details(paths, segments=seconds)
        except Exception as err:  # the page reports, never crashes
            return _table([]), _empty_preferences(), _empty_curve(), f"Scoring failed: {type(err).__name__}: {err}"
        names = _display_names(paths)
        rows = [(names[p], round(results[p].score, 2), "") if p in results else (names[p], None, errors[p]) for p in paths]
        preferences = pd.DataFrame(
            [(names[p], anchor, round(value, 4)) for p in paths if p in results for anchor, value in zip(scorer.anchor_scores, results[p].preferences)],
            columns=["video", "anchor score", "P(video better)"],
        )
        curve = pd.DataFrame(
            [(names[p], round((s.start + s.end) / 2, 3), round(s.score, 2)) for p in paths if p in results for s in results[p].segments],
            columns=["video", "time (s)", "score"],
        )
        return _table(rows), preferences, curve, _summary(len(results), errors, names)

    def compare(first, second):
        if not first or not second:
            return _empty_levels(), _empty_levels(), "Upload two videos."
        try:
            result = scorer.compare_pair(first, second)
        except Exception as err:  # VideoError names the file and the reason
            return _empty_levels(), _empty_levels(), f"Could not compare: {err}"
        tables = [pd.DataFrame([(level, round(dist[level], 4)) for level in LEVELS], columns=["level", "probability"])
                  for dist in (result.second_vs_first, result.first_vs_second)]
        verdict = "better" if result.p_second_better > 0.5 else "worse" if result.p_second_better < 0.5 else "as good"
        message = (
            f"P(second better) = {result.p_second_better:.3f} (both orders averaged): the second video looks {verdict} "
            f"than the first. Most likely level, second after first: **{max(result.second_vs_first, key=result.second_vs_first.get)}**."
        )
        return tables[0], tables[1], message

    def score_folder(files):
        paths = _paths(files)
        if not paths:
            return _table([]), None, "Upload a folder of videos."
        try:
            results, errors = scorer.score_details(paths)
        except Exception as err:
            return _table([]), None, f"Scoring failed: {type(err).__name__}: {err}"
        names = _display_names(paths)
        rows = sorted(((names[p], round(r.score, 2), "") for p, r in results.items()), key=lambda row: -row[1])
        rows += [(names[p], None, reason) for p, reason in errors.items()]
        table = _table(rows)
        csv_path = Path(tempfile.mkdtemp(prefix="ssvqa-app-")) / "scores.csv"
        table.to_csv(csv_path, index=False)
        return table, str(csv_path), _summary(len(results), errors, names)

    preload = [str(p) for p in preload]
    scored = score(preload, preload_segments) if preload else (_table([]), _empty_preferences(), _empty_curve(), "")
    compared = compare(preload[0], preload[1]) if len(preload) > 1 else (_empty_levels(), _empty_levels(), "")

    with gr.Blocks(title=title) as page:
        gr.Markdown(
            f"# {title}: video quality, 0–100\n"
            f"Each video is compared with {len(scorer.anchor_scores)} anchor videos of known quality by the ranker; "
            "the answers become a 0–100 score calibrated on the anchors' known scores (a video better than the best "
            "anchor scores above it, never a flat 100)."
        )
        gr.Markdown("## Score videos")
        with gr.Row():
            videos = gr.File(label="videos", file_count="multiple", value=preload or None)
            with gr.Column():
                segments = gr.Number(
                    label="segment length in seconds (optional): quality over time", value=preload_segments, minimum=0
                )
                score_button = gr.Button("Score", variant="primary")
        score_message = gr.Markdown(scored[3])
        scores = gr.Dataframe(scored[0], label="scores", interactive=False)
        with gr.Row():
            preferences = gr.LinePlot(
                scored[1], x="anchor score", y="P(video better)", color="video", label="preference against each anchor (by its score)",
                y_lim=[0, 1], x_lim=[min(scorer.anchor_scores), max(scorer.anchor_scores)],
            )
            curve = gr.LinePlot(scored[2], x="time (s)", y="score", color="video", label="score over time", y_lim=[0, 100])
        score_button.click(score, [videos, segments], [scores, preferences, curve, score_message], api_name="score")

        gr.Markdown("## Compare two videos")
        with gr.Row():
            first = gr.File(label="first video", value=preload[0] if len(preload) > 1 else None)
            second = gr.File(label="second video", value=preload[1] if len(preload) > 1 else None)
        compare_button = gr.Button("Compare", variant="primary")
        compare_message = gr.Markdown(compared[2])
        with gr.Row():
            levels = [
                gr.BarPlot(table, x="level", y="probability", label=label, y_lim=[0, 1], sort=list(LEVELS))
                for table, label in zip(compared[:2], ("the second video, shown after the first", "asked the other way: the first, shown after the second"))
            ]
        compare_button.click(compare, [first, second], [*levels, compare_message], api_name="compare")

        gr.Markdown("## Score a folder")
        folder = gr.File(label="folder of videos", file_count="directory")
        folder_button = gr.Button("Score the folder", variant="primary")
        folder_message = gr.Markdown()
        folder_scores = gr.Dataframe(_table([]), label="scores (click a column to sort)", interactive=False)
        download = gr.File(label="CSV")
        folder_button.click(score_folder, [folder], [folder_scores, download, folder_message], api_name="score_folder")
    return page


def _paths(files) -> list[str]:
    if not files:
        return []
    files = files if isinstance(files, (list, tuple)) else [files]
    return [str(getattr(f, "name", f)) for f in files]


def _display_names(paths: Sequence[str]) -> dict[str, str]:
    """File names as uploaded (Gradio keeps each in a folder of its own); the full path if two clash."""
    names = [Path(p).name for p in paths]
    return {p: (n if names.count(n) == 1 else p) for p, n in zip(paths, names)}


def _table(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["video", "score", "error"])


def _empty_preferences():
    import pandas as pd

    return pd.DataFrame(columns=["video", "anchor score", "P(video better)"])


def _empty_curve():
    import pandas as pd

    return pd.DataFrame(columns=["video", "time (s)", "score"])


def _empty_levels():
    import pandas as pd

    return pd.DataFrame(columns=["level", "probability"])


def _summary(scored: int, errors: dict[str, str], names: dict[str, str]) -> str:
    text = f"{scored} scored"
    if errors:
        text += f", {len(errors)} could not be scored: " + "; ".join(f"**{names[p]}**: {reason}" for p, reason in errors.items())
    return text


__all__ = ["build_app", "default_model", "theme", "gradio"]
