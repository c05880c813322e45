"""Build a pair dataset from human mean opinion scores (the supervised baseline).

    python dataset_builders/mos_pairs.py --help
    python -m dataset_builders.mos_pairs ...        # the same

This is ``ssvqa build-mos-pairs``: the options are :mod:`ssvqa.commands.build_mos_pairs`'s and the
build is :func:`ssvqa.pairs.mos.build_mos_pairs` (its module doc explains how pairs and labels are made).
From Python::

    from ssvqa.pairs import build_mos_pairs
    report = build_mos_pairs(...)  # then print(report); push_to_hub="user/name" publishes it
"""

import sys

from ssvqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-mos-pairs", *sys.argv[1:]]))
