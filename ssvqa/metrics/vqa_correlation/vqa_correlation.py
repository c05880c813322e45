"""VQA correlation: SRCC, KRCC, PLCC (after VQEG's 4-parameter logistic fit) and RMSE against MOS.

An ``evaluate`` metric for video (and image) quality assessment. It is a thin wrapper: the numbers
come from :func:`ssvqa.evaluation.correlation_report`, so the metric and the library always agree.

Load it offline from its folder (nothing is fetched from the Hub for a local path)::

    from ssvqa.evaluation import VQA_CORRELATION_METRIC  # import ssvqa before evaluate (torchvision shim)
    import evaluate

    metric = evaluate.load(VQA_CORRELATION_METRIC)
    metric.compute(predictions=[61.2, 40.0, 77.5, 20.1, 55.0], references=[3.4, 2.9, 4.1, 1.8, 3.0])
"""

# ssvqa first: it installs the torchvision shim that importing evaluate needs on CPU-only torch.
# (No comment on import lines: evaluate's loader parses them.)
import ssvqa.evaluation
import datasets
import evaluate

from ssvqa.evaluation import correlation_report

_DESCRIPTION = """
Agreement of predicted quality scores with mean opinion scores (MOS), as VQA papers report it:
Spearman (SRCC) and Kendall tau-b (KRCC) rank correlations on the raw predictions; Pearson (PLCC)
and RMSE after fitting the monotonic 4-parameter logistic of VQEG,
f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2, from predictions to MOS (a linear fit is
used when the logistic fit fails; the output says which). `plcc_raw` is Pearson without a fit.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted quality scores, any scale, higher is better.
    references (list of float): mean opinion scores of the same videos, in the same order.
Returns:
    srcc, krcc, plcc, plcc_raw (float): correlations; NaN when an input is constant.
    rmse (float): root mean squared error after the fit, on the MOS scale.
    n (int): number of videos.
    fit (str): "logistic" or "linear".
    fit_params (list of float): the fitted b1..b4 (logistic) or slope, intercept (linear).
Example:
    >>> metric = evaluate.load("path/to/vqa_correlation")
    >>> metric.compute(predictions=[1, 2, 3, 4, 5, 6], references=[1.1, 1.9, 3.2, 3.9, 5.1, 6.0])["srcc"]
    1.0
"""

_CITATION = """
@techreport{vqeg2000,
  title = {Final Report from the Video Quality Experts Group on the Validation of Objective Models of Video Quality Assessment},
  author = {{Video Quality Experts Group}},
  year = {2000}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VqaCorrelation(evaluate.Metric):
    """SRCC / KRCC / PLCC / RMSE of predicted quality scores against MOS."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=["https://www.its.bldrdoc.gov/vqeg/projects/frtv-phase-i/frtv-phase-i.aspx"],
        )

    def _compute(self, predictions, references):
        return correlation_report(predictions, references)
