"""The browser app, served on 127.0.0.1 and driven the way a client would: results equal the scorer's.

The ranker is the tiny untrained test model: what is checked is that the page returns exactly what
``QualityScorer`` computes on the same videos, and that bad files come back as reasons.
"""

from __future__ import annotations

import os

import pytest

from ssvqa.app import NO_NETWORK_ENV

for _key, _value in NO_NETWORK_ENV.items():  # before gradio is imported: no analytics, no telemetry
    os.environ.setdefault(_key, _value)

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from ssvqa.app import build_app, default_model, theme  # noqa: E402
from ssvqa.errors import SsvqaError  # noqa: E402
from ssvqa.labels import LEVELS  # noqa: E402
from ssvqa.scorer import QualityScorer  # noqa: E402
from ssvqa.testing import save_tiny_model  # noqa: E402
from conftest import free_port, make_video  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    model = save_tiny_model(root / "model")
    anchors = [(make_video(root / "anchors" / f"a{i}.mp4", size="112x84", source=s), 30.0 * i) for i, s in enumerate(("smptebars", "testsrc2", "mandelbrot"))]
    videos = [make_video(root / "videos" / f"v{i}.mp4", size="112x84", source=s, duration=2) for i, s in enumerate(("rgbtestsrc", "yuvtestsrc"))]
    bad = root / "videos" / "broken.mp4"
    bad.write_text("not a video\n")
    scorer = QualityScorer.from_pretrained(model, anchors, batch_size=4)
    page = build_app(scorer)
    port = free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=theme())
    client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(root / "downloads"))
    # A second scorer loaded from the same folders: the page must agree with the library.
    reference = QualityScorer.from_pretrained(model, anchors, batch_size=4)
    yield {"client": client, "reference": reference, "videos": videos, "bad": bad, "anchors": anchors}
    page.close()


def _rows(table):
    return {row[0]: row[1:] for row in table["data"]}


def test_scores_and_preferences_equal_the_scorer(served):
    client, reference, videos = served["client"], served["reference"], served["videos"]
    files = [gradio_client.handle_file(str(v)) for v in [*videos, served["bad"]]]
    table, preferences, curve, message = client.predict(files, 1.0, api_name="/score")
    expected, errors = reference.score_details([str(v) for v in videos], segments=1.0)
    assert not errors
    rows = _rows(table)
    for video in videos:
        assert rows[video.name][0] == round(expected[str(video)].score, 2)
    # The bad file is in the table with its reason, and named in the message line.
    assert rows["broken.mp4"][0] is None and "not a readable video" in rows["broken.mp4"][1]
    assert "broken.mp4" in message and "2 scored" in message
    # Preference chart: one bar per video and anchor, the scorer's preferences.
    bars = {(row[0], row[1]): row[2] for row in preferences["data"]}
    for video in videos:
        for k, value in enumerate(expected[str(video)].preferences):
            assert bars[(video.name, served["anchors"][k][1])] == pytest.approx(value, abs=1e-4)
    # Score over time: two 1 s segments per 2 s video.
    points = [(row[0], row[2]) for row in curve["data"]]
    for video in videos:
        assert [s for name, s in points if name == video.name] == [round(s.score, 2) for s in expected[str(video)].segments]


def test_compare_both_orders_equal_the_scorer(served):
    client, reference = served["client"], served["reference"]
    first, second = served["videos"]
    second_after_first, first_after_second, message = client.predict(
        gradio_client.handle_file(str(first)), gradio_client.handle_file(str(second)), api_name="/compare"
    )
    expected = reference.compare_pair(first, second)
    got = {row[0]: row[1] for row in second_after_first["data"]}
    swapped = {row[0]: row[1] for row in first_after_second["data"]}
    for level in LEVELS:
        assert got[level] == pytest.approx(expected.second_vs_first[level], abs=1e-4)
        assert swapped[level] == pytest.approx(expected.first_vs_second[level], abs=1e-4)
    assert f"{expected.p_second_better:.3f}" in message
    # A bad file: the reason, not a crash.
    *_, message = client.predict(gradio_client.handle_file(str(first)), gradio_client.handle_file(str(served["bad"])), api_name="/compare")
    assert "broken.mp4" in message and "not a readable video" in message


def test_folder_table_sorted_with_csv(served):
    client, reference, videos = served["client"], served["reference"], served["videos"]
    files = [gradio_client.handle_file(str(v)) for v in [*videos, served["bad"]]]
    table, csv_file, message = client.predict(files, api_name="/score_folder")
    expected = {v.name: round(s, 2) for v, s in zip(videos, reference.score(videos))}
    scored = [row for row in table["data"] if row[1] is not None]
    assert [row[1] for row in scored] == sorted(expected.values(), reverse=True)
    assert {row[0]: row[1] for row in scored} == expected
    lines = open(csv_file).read().splitlines()
    assert lines[0] == "video,score,error" and len(lines) == 1 + 3 and "broken.mp4" in lines[-1]


def test_no_demo_model_gives_a_clear_message(tmp_path):
    with pytest.raises(SsvqaError, match="run.sh demo"):
        default_model(tmp_path)
