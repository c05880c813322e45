"""Pairs from human mean opinion scores: the supervised baseline (``ssvqa build-mos-pairs``).

    python dataset_builders/mos_pairs.py lsvq=/data/LSVQ --split train -o lsvq-pairs --push-to-hub org/lsvq-pairs --private

Most benchmarks may not be redistributed: keep such a dataset local or private. The build:
:func:`ssvqa.pairs.build_mos_pairs`.
"""

import sys

from ssvqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-mos-pairs", *sys.argv[1:]]))
