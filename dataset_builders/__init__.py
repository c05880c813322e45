"""Scripts that build pair datasets and publish them, in the manner of TRL's ``examples/datasets``.

Each is a few lines around the library: the options are those of the matching ``ssvqa`` command
(:mod:`ssvqa.commands`) and the work is done by :mod:`ssvqa.pairs`. The library never imports them.

- ``distortion_pairs.py``: pairs of one source at known distortion severities;
- ``pseudo_label_pairs.py``: pairs of unlabeled videos labelled by quality teachers;
- ``mos_pairs.py``: pairs from human mean opinion scores.
"""
