"""Programs that build pair datasets and publish them (a local folder ``load_dataset`` reads, or
the Hub). Each is a module with ``add_arguments(parser)``, ``main(args)`` and a Python function
doing the work; ``ssvqa <command>`` and ``python -m dataset_builders.<name>`` both run them.

- :mod:`dataset_builders.distortion_pairs`: pairs of one source at known distortion severities.
"""
