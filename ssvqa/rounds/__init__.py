"""One self-improvement round: data, training, evaluation, publishing, report.

``recipes/round.py`` is the thin script around :func:`run_round`; this package holds the logic so
tests and notebooks call it directly, one module per stage: :mod:`~ssvqa.rounds.arguments`,
:mod:`~ssvqa.rounds.data`, :mod:`~ssvqa.rounds.run` (training and publishing),
:mod:`~ssvqa.rounds.evaluation` and :mod:`~ssvqa.rounds.report`. Round ``k`` of a run in ``output_dir``:

1. **data** -- the pair datasets named in ``pair_datasets`` (Hub ids or local folders, loaded with
   :func:`ssvqa.pairs.dataset.load_pairs`); the embedded CPU default makes its own first
   (:mod:`ssvqa.demo`: a synthetic corpus, distortion pairs, and pseudo-label pairs from the
   teachers on a pool of videos whose quality is hidden but known).
   Round 0 trains on the pairs as they are; round ``k > 0`` on the same pairs with those of
   ``relabel_origins`` relabelled by the ranker of round ``k - 1``
   (:func:`ssvqa.relabel.relabel_with_ranker`), optionally dropping low-confidence ones. The
   training pairs are saved as ``round-k/dataset`` (a pair dataset with its card).
2. **train** -- :class:`~ssvqa.trainer.RankTrainer` from the base model, or from round ``k - 1``'s
   model (``init_from``), checkpointing into ``round-k/checkpoints`` (an interrupted round resumes
   from its last checkpoint); the model goes to ``round-k/model`` with a card that carries the
   round's figures and lineage.
3. **evaluate** -- held-out pair accuracy on the test splits of the pairs whose labels are exact
   (``eval_origins``), SRCC/PLCC of 0-100 scores on each of ``benchmarks`` (anchors from
   ``anchors``), and, where a hidden quality is known (``hidden_quality``), how often the training
   labels agree with it.
4. **publish** -- ``round-k/model`` to ``hub_model_id`` (a ``RankConfig`` field, as in every
   ``Trainer``; branch ``round-k`` and ``main``; ``push_to_hub`` stays off, the round pushes) and
   ``round-k/dataset`` to ``hub_dataset_id`` (branch ``round-k``). A failed push is reported and
   leaves everything local; running the round again retries only the push.
5. **report** -- ``round-k/report.json``, ``output_dir/rounds.png`` (figures across rounds), and a
   table of all rounds so far.

A round whose ``report.json`` exists is finished: running it again says so and changes nothing.
Under ``accelerate launch`` every process trains, relabels its share of the pairs and scores its
share of the comparisons (:mod:`ssvqa.parallel`); the main process writes and publishes.
"""


from ssvqa.rounds.arguments import RoundArguments, round_dir
from ssvqa.rounds.run import last_complete_checkpoint, run_round

__all__ = ["RoundArguments", "last_complete_checkpoint", "round_dir", "run_round"]
