"""What a person sees in the terminal: a line per stage, one progress bar per long step, no chatter.

Every command calls :func:`setup_output` first (``ssvqa`` subcommands, the demo, ``recipes/round.py``).
Unless ``verbose``, it quiets what other libraries print: the progress bars of datasets
("Generating…", "Casting…", "Creating parquet…"), transformers ("Loading weights", "Writing
model shards") and huggingface_hub (downloads), their info logs, bitsandbytes' message about the
optional ``kernels`` package, and Python warnings raised inside third-party modules. Errors still
show. It works through the libraries' own switches: environment variables read at import (also seen
by subprocesses such as ``accelerate launch`` workers) and, for a library already imported, its
functions.

Progress of ssvqa's own long steps goes through :func:`progress`: a tqdm bar in a terminal (or a
notebook), and elsewhere (a log file, CI) a plain line halfway and one at the end, so a log holds
two lines per step instead of one carriage-return update per item (a fresh demo of three rounds
printed 63 lines before its final table). The training loop gets the same through
:func:`use_line_progress`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings

# Third-party packages whose bars, logs and warnings are quiet unless verbose.
THIRD_PARTY = ("datasets", "transformers", "huggingface_hub", "accelerate", "trl", "peft", "bitsandbytes", "torch",
               "torchvision", "torchcodec", "gradio", "httpx", "evaluate")
QUIET_ENV = {
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "ACCELERATE_LOG_LEVEL": "error",
}
MARKS = (0.5,)  # fractions of the way that get a line outside a terminal (and the end)


def setup_output(verbose: bool = False) -> None:
    """Quiet third-party progress bars, logs and warnings (nothing changes with ``verbose``).

    Variables the user has set keep their values.
    """
    if verbose:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    pattern = "|".join(THIRD_PARTY)
    warnings.filterwarnings("ignore", module=rf"({pattern})(\.|$)")
    # Libraries imported already do not read the variables again: use their switches.
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def interactive(stream=None) -> bool:
    """True in a terminal or a notebook, where a live progress bar is read as it moves."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0, disable: bool = False):
    """A progress bar with tqdm's interface (iterate, or ``update(n)``/``close()``, or ``with``).

    In a terminal or notebook: ``tqdm.auto.tqdm``. Elsewhere: :class:`LineProgress`, a plain line
    halfway and one at the end.
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if interactive():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=disable, file=sys.stderr, dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=disable)


class LineProgress:
    """Progress as a few plain lines (``desc: 60/120 videos (50%), 0:42``): for logs, not terminals."""

    def __init__(self, iterable=None, *, total=None, desc="", unit="it", initial=0, disable=False, stream=None):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n, self.disable, self.stream = initial, disable, stream or sys.stderr
        self.started = time.monotonic()
        self._next = 0  # index into MARKS of the next line to print
        self._closed = False
        self._skip_passed()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self):
        return self.total or 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable or not self.total:
            return
        if self._next < len(MARKS) and self.n < self.total and self.n >= MARKS[self._next] * self.total:
            self._line()
            self._skip_passed()

    def set_postfix(self, *args, **kwargs) -> None:  # tqdm's interface; nothing to show between lines
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.disable and self.n:
            self._line()

    def _skip_passed(self) -> None:
        while self._next < len(MARKS) and self.total and self.n >= MARKS[self._next] * self.total:
            self._next += 1

    def _line(self) -> None:
        elapsed = int(time.monotonic() - self.started)
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        share = f" ({100 * self.n // self.total}%)" if self.total else ""
        print(f"{self.desc + ': ' if self.desc else ''}{count} {self.unit}{share}, {elapsed // 60}:{elapsed % 60:02d}",
              file=self.stream, flush=True)


def use_line_progress(trainer) -> None:
    """One progress bar for a ``transformers.Trainer``'s training, whatever the log level.

    In a terminal: the Trainer's own tqdm bar (``ProgressCallback``; with transformers' logs
    quieted the Trainer would otherwise print a dict per log step instead). Elsewhere:
    :class:`LineProgress` lines for training and evaluation, and one short line at the end.
    """
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if interactive():
        trainer.add_callback(ProgressCallback())
        return

    class LineProgressCallback(TrainerCallback):
        def __init__(self):
            self.training = self.predicting = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.training = LineProgress(total=state.max_steps, initial=state.global_step, desc="[train] steps", unit="steps")

        def on_step_end(self, args, state, control, **kwargs):
            if self.training is not None:
                self.training.update(state.global_step - self.training.n)

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
            if state.is_world_process_zero and eval_dataloader is not None and hasattr(eval_dataloader, "__len__"):
                if self.predicting is None:
                    self.predicting = LineProgress(total=len(eval_dataloader), desc="[eval] batches", unit="batches")
                self.predicting.update(1)

        def on_evaluate(self, args, state, control, **kwargs):
            if self.predicting is not None:
                self.predicting.close()
                self.predicting = None

        def on_train_end(self, args, state, control, **kwargs):
            if self.training is not None:
                self.training.close()
                self.training = None
            if state.is_world_process_zero and state.log_history:
                last = state.log_history[-1]
                shown = {k: last[k] for k in ("train_loss", "pair_accuracy", "mirrored_pair_accuracy", "train_runtime") if k in last}
                if shown:
                    print("[train] " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()),
                          file=sys.stderr, flush=True)

    trainer.add_callback(LineProgressCallback())


@contextlib.contextmanager
def without_progress(trainer):
    """Run short extra evaluations without their progress lines (the Trainer's bar or
    :class:`LineProgress`), so a round's output stays one page."""
    from transformers import ProgressCallback

    shown = [cb for cb in trainer.callback_handler.callbacks
             if isinstance(cb, ProgressCallback) or type(cb).__name__ == "LineProgressCallback"]
    for callback in shown:
        trainer.remove_callback(callback)
    try:
        yield
    finally:
        for callback in shown:
            trainer.add_callback(callback)


def add_verbose_argument(parser) -> None:
    """``--verbose``: show other libraries' progress bars, logs and warnings."""
    parser.add_argument("--verbose", action="store_true", help="show other libraries' progress bars, logs and warnings")
