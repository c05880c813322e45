"""ssvqa.console: progress outside a terminal is a couple of plain lines, not a carriage-return flood."""

from __future__ import annotations

import io

from ssvqa.console import LineProgress, progress


def test_line_progress_prints_halfway_and_at_the_end():
    stream = io.StringIO()
    with LineProgress(total=100, desc="scoring", unit="videos", stream=stream) as bar:
        for _ in range(100):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split(",")[0] for line in lines] == ["scoring: 50/100 videos (50%)", "scoring: 100/100 videos (100%)"]


def test_resumed_and_iterated_bars(capsys):
    stream = io.StringIO()
    LineProgress(total=10, initial=8, desc="sources", stream=stream).close()  # resumed past halfway: only the end
    assert stream.getvalue().startswith("sources: 8/10") and len(stream.getvalue().splitlines()) == 1
    assert list(progress(range(4), desc="chunks")) == [0, 1, 2, 3]  # pytest's stderr is not a terminal
    err = capsys.readouterr().err
    assert err.count("chunks:") == 2 and "\r" not in err
