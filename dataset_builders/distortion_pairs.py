"""Build a pair dataset from synthetic distortions of source videos (labels known by construction).

    python dataset_builders/distortion_pairs.py --help
    python -m dataset_builders.distortion_pairs ...        # the same

This is ``ssvqa build-distortion-pairs``: the options are :mod:`ssvqa.commands.build_distortion_pairs`'s and the
build is :func:`ssvqa.pairs.distortion.build_distortion_pairs` (its module doc explains how pairs and labels are made).
From Python::

    from ssvqa.pairs import build_distortion_pairs
    report = build_distortion_pairs(...)  # then print(report); push_to_hub="user/name" publishes it
"""

import sys

from ssvqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-distortion-pairs", *sys.argv[1:]]))
