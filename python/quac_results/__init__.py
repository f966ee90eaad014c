"""Read quac-host results into NumPy and pandas.

    import quac_results as qr
    run = qr.load("runs/synth")
    run.inputs["x"], run.predictions["logits"], run.attribution("saliency")
    run.scores()                 # run, method, scorer, sample, score
    x, curves = run.curve("saliency", "quac")
    qr.compare(run)              # run, method, scorer, median, q25, q75, mean, better, rank

Needs only NumPy and pandas (safetensors files are read here).
"""
from .compare import compare
from .run import Run, load
from . import safetensors

__all__ = ["Run", "load", "compare", "safetensors"]
