"""Pairs of one source at known distortion severities: labels by construction, no annotator.

    python dataset_builders/distortion_pairs.py videos/ -o pairs/ --types h264,gaussian_blur,noise --num-proc 8
    python dataset_builders/distortion_pairs.py user/raw-videos -o pairs/ --push-to-hub user/distortion-pairs

The same as ``ssvqa build-distortion-pairs`` (``--help`` lists the options). The work is
:func:`ssvqa.pairs.build_distortion_pairs`::

    report = build_distortion_pairs("videos/", "pairs/", types=["h264", "noise"], push_to_hub="user/pairs")
"""

import sys

from ssvqa.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-distortion-pairs", *sys.argv[1:]]))
