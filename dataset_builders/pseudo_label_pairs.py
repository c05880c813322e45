"""Pairs of unlabeled videos, labelled by quality teachers whose scores are aligned and combined.

    python dataset_builders/pseudo_label_pairs.py /data/pool -o pseudo/ --teachers classical,brisque,niqe \
        --teacher-scores dover=dover.csv fastvqa=fastvqa.csv --push-to-hub user/pseudo-pairs

``ssvqa build-pseudo-pairs`` under another name; the build is :func:`ssvqa.pairs.build_pseudo_pairs`.
"""

import sys

from ssvqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-pseudo-pairs", *sys.argv[1:]]))
