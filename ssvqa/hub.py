"""Publishing a local folder (pair dataset or trained model) to the Hugging Face Hub.

One function, :func:`push_folder`, used by the dataset builders (through :class:`HubPush`) and by
the training rounds:
create the repository if missing, create the branch (e.g. ``round-3``) if one is named and
missing, then upload the folder in one go. Builders' private work folders (``.work/``) and
temporary files are never uploaded.

The token comes from the argument, or else ``HF_TOKEN`` / the saved login, as everywhere in
``huggingface_hub``; it is never printed or logged here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ssvqa.errors import InputNotFoundError
from ssvqa.video import VIDEO_EXTENSIONS, unusable_reason

# Never uploaded: builders' resumable work folders, half-written temporary files, caches.
IGNORE_PATTERNS: tuple[str, ...] = (".work/**", "**/.work/**", ".*.tmp-*", "**/.*.tmp-*", "**/__pycache__/**")


def is_hub_id(spec: str | os.PathLike) -> bool:
    """True when ``spec`` can only mean a Hub repository: ``"name"`` or ``"owner/name"`` by the
    Hub's rules, not an entry on disk (even a broken symlink), not starting with ``.``, ``/`` or
    ``~``, and not ending like a video file.

    >>> [is_hub_id(s) for s in ("user/pairs", "gpt2", "./pairs", "/data/x", "clip.mp4", "a/b/c")]
    [True, True, False, False, False, False]
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    text = os.fspath(spec)
    if os.path.lexists(text) or text.startswith((".", "/", "~")) or Path(text).suffix.lower() in VIDEO_EXTENSIONS:
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def local_or_hub_id(spec: str | os.PathLike, what: str = "file or folder") -> str:
    """``spec`` as a string when it exists on disk or is a Hub id (:func:`is_hub_id`).

    Anything else is a mistyped local path: it fails at once, with the reason, instead of a
    long wait for the Hub.

    Raises:
        InputNotFoundError: names ``spec`` and why (no such file, broken symlink, symlink loop).
    """
    text = os.fspath(spec)
    if os.path.exists(text) or is_hub_id(text):
        return text
    reason = unusable_reason(text) or "cannot be opened"
    if reason == "file does not exist":
        reason = f"no such {what}"
    raise InputNotFoundError(f"{text}: {reason} (and not a Hub id like 'owner/name')")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload ``folder`` to ``repo_id`` and return the URL of the commit.

    Args:
        folder: the local folder (a pair dataset folder, or a ``save_pretrained`` folder).
        repo_id: ``"user/name"`` on the Hub.
        repo_type: ``"dataset"`` or ``"model"``.
        revision: a branch to upload to, created from the default branch when missing (one per
            self-improvement round: ``"round-3"``); ``None`` uploads to the default branch.
        private: visibility when the repository is created (an existing one keeps its own).
        token: a Hub token; ``None`` uses ``HF_TOKEN`` or the saved login.
        commit_message: defaults to "Upload <folder name> with ssvqa".
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder, nothing to push")
    if repo_type not in ("dataset", "model"):
        raise ValueError(f"repo_type must be 'dataset' or 'model', got {repo_type!r}")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type=repo_type,
        revision=revision,
        commit_message=commit_message or f"Upload {folder.name} with ssvqa",
        ignore_patterns=list(IGNORE_PATTERNS),
    )
    return commit.commit_url


@dataclass(frozen=True)
class HubPush:
    """Where a builder publishes its dataset folder: a dataset repo, optionally a branch of it.

    >>> HubPush("user/pairs", revision="round-0")
    HubPush(repo_id='user/pairs', revision='round-0', private=False)
    """

    repo_id: str
    revision: str | None = None  # a branch, created when missing; None: the default branch
    private: bool = False  # visibility when the repository is created
    token: str | None = field(default=None, repr=False)  # None: HF_TOKEN or the saved login

    @classmethod
    def of(cls, target: str | HubPush | None) -> HubPush | None:
        """A repo id, a ``HubPush`` or None, as a ``HubPush`` (or None)."""
        return cls(target) if isinstance(target, str) else target

    def push(self, folder: str | Path, commit_message: str) -> str:
        """Upload ``folder`` (:func:`push_folder`); returns the commit URL."""
        return push_folder(folder, self.repo_id, repo_type="dataset", revision=self.revision, private=self.private,
                           token=self.token, commit_message=commit_message)
