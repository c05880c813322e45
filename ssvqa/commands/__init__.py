"""The ``ssvqa`` subcommands: one module each, with ``add_arguments(parser)`` and ``main(args)``.

They hold only the command line: options, parsing, printing and exit status. The work is done by
the library (:mod:`ssvqa.pairs`, :mod:`ssvqa.scorer`, :mod:`ssvqa.evaluation`, ...), which never
imports them. :mod:`ssvqa.cli` lists them; :mod:`ssvqa.commands.options` holds the options
several share.
"""
