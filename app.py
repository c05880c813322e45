"""A Hugging Face Space (or `python app.py`): the ssvqa page for one ranker.

The ranker comes from SSVQA_MODEL (a folder or Hub id; default: the newest model that
`bash run.sh demo` trained) and its anchors from SSVQA_ANCHORS (default: the anchors.json saved
with the model). Everything else is ssvqa.app, the page `ssvqa app` serves.
"""

import os

import torch

from ssvqa.app import build_app, default_model, theme
from ssvqa.scorer import QualityScorer

scorer = QualityScorer.from_pretrained(
    os.environ.get("SSVQA_MODEL") or str(default_model()),
    os.environ.get("SSVQA_ANCHORS") or None,
    device_map="auto" if torch.cuda.is_available() else None,
)
demo = build_app(scorer)

if __name__ == "__main__":
    demo.launch(theme=theme())
