"""Publishing a local folder (pair dataset or trained model) to the Hugging Face Hub.

One function, :func:`push_folder`, used by the dataset builders and by the training rounds:
create the repository if missing, create the branch (e.g. ``round-3``) if one is named and
missing, then upload the folder in one go. Builders' private work folders (``.work/``) and
temporary files are never uploaded.

The token comes from the argument, or else ``HF_TOKEN`` / the saved login, as everywhere in
``huggingface_hub``; it is never printed or logged here.
"""

from __future__ import annotations

from pathlib import Path

# Never uploaded: builders' resumable work folders, half-written temporary files, caches.
IGNORE_PATTERNS: tuple[str, ...] = (".work/**", "**/.work/**", ".*.tmp-*", "**/.*.tmp-*", "**/__pycache__/**")


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
