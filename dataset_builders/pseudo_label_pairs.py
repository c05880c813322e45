"""Build a pair dataset from unlabeled videos labelled by quality teachers (pseudo labels).

    python dataset_builders/pseudo_label_pairs.py --help
    python -m dataset_builders.pseudo_label_pairs ...        # the same

This is ``ssvqa build-pseudo-pairs``: the options are :mod:`ssvqa.commands.build_pseudo_pairs`'s and the
build is :func:`ssvqa.pairs.pseudo.build_pseudo_pairs` (its module doc explains how pairs and labels are made).
From Python::

    from ssvqa.pairs import build_pseudo_pairs
    report = build_pseudo_pairs(...)  # then print(report); push_to_hub="user/name" publishes it
"""

import sys

from ssvqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-pseudo-pairs", *sys.argv[1:]]))
