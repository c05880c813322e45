"""Hub publishing (ssvqa.hub.push_folder) against a fake Hub.

This mocks the Hub HTTP API only (``tests/fake_hub.py``, a local HTTP server): the real
``huggingface_hub`` client builds and sends every request, and the test checks what arrived.
"""

from __future__ import annotations

import logging

import pytest

from ssvqa.hub import push_folder
from fake_hub import FakeHub  # tests/ is on sys.path (pytest rootdir conftest)

TOKEN = "hf_fake_token_never_printed_123"


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub.constants

    with FakeHub() as fake:
        # HfApi reads the endpoint from constants when it is created; HF_ENDPOINT is read only at
        # import time, so set both (the env var for subprocesses started by a test).
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake.endpoint)
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        yield fake


def _folder(tmp_path):
    folder = tmp_path / "dataset"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: other\n---\n\n# A dataset\n")
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(bytes(range(256)) * 40)
    (folder / "skipped-00000-of-00001.jsonl").write_text('{"input": "e.mp4", "reason": "0-byte file"}\n')
    # Never uploaded: the builder's resumable work folder and half-written temporaries.
    (folder / ".work" / "done").mkdir(parents=True)
    (folder / ".work" / "done" / "clip.json").write_text("{}")
    (folder / "data" / ".train-00000-of-00001.parquet.tmp-123").write_bytes(b"partial")
    return folder


def test_push_folder_uploads_exactly_the_folder(hub, tmp_path, capsys, caplog):
    folder = _folder(tmp_path)
    caplog.set_level(logging.DEBUG)
    url = push_folder(folder, "someone/pairs", token=TOKEN)

    expected = {
        "README.md": (folder / "README.md").read_bytes(),
        "data/train-00000-of-00001.parquet": (folder / "data" / "train-00000-of-00001.parquet").read_bytes(),
        "skipped-00000-of-00001.jsonl": (folder / "skipped-00000-of-00001.jsonl").read_bytes(),
    }
    assert hub.files("someone/pairs") == expected
    assert url.startswith(f"{hub.endpoint}/datasets/someone/pairs/commit/")
    assert [c["revision"] for c in hub.repos[("dataset", "someone/pairs")].commits] == ["main"]
    assert not hub.repos[("dataset", "someone/pairs")].private
    # The token reached the server as a bearer credential and was never printed or logged.
    posts = [r for r in hub.requests if r["method"] == "POST"]
    assert [r["path"].split("?")[0] for r in posts] == [
        "/api/repos/create",
        "/api/validate-yaml",
        "/api/datasets/someone/pairs/preupload/main",
        "/api/datasets/someone/pairs/commit/main",
    ]
    assert all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in posts)
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + caplog.text


def test_push_folder_to_a_new_branch_keeps_main(hub, tmp_path):
    folder = _folder(tmp_path)
    push_folder(folder, "someone/ranker", repo_type="model", private=True, token=TOKEN)
    assert hub.repos[("model", "someone/ranker")].private
    (folder / "README.md").write_text("---\nlicense: other\n---\n\n# Round 3\n")
    (folder / "round3.txt").write_text("new in round 3")
    push_folder(folder, "someone/ranker", repo_type="model", revision="round-3", token=TOKEN)
    # A second push to the existing branch is fine too (create_branch with exist_ok).
    push_folder(folder, "someone/ranker", repo_type="model", revision="round-3", token=TOKEN)

    main = hub.files("someone/ranker", "model", "main")
    round3 = hub.files("someone/ranker", "model", "round-3")
    assert b"# A dataset" in main["README.md"] and "round3.txt" not in main
    assert round3["README.md"] == (folder / "README.md").read_bytes()
    assert round3["round3.txt"] == b"new in round 3"
    assert not any(path.startswith(".work") or ".tmp-" in path for path in round3)


def test_push_folder_rejects_a_missing_folder(hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to push"):
        push_folder(tmp_path / "missing", "someone/pairs", token=TOKEN)
    assert [r for r in hub.requests if r["method"] == "POST"] == []
