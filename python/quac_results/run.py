"""One results folder of `quac-host run`."""
import json
import os

import numpy as np
import pandas as pd

from . import safetensors


class Run:
    """A results folder: inputs.safetensors, predictions.safetensors, attributions/<method>.safetensors,
    scores/<method>.json and scores/<method>.<scorer>.safetensors, run.json. Everything is read when
    asked for."""

    def __init__(self, folder, label=None):
        self.folder = os.path.abspath(folder)
        if not os.path.isfile(os.path.join(self.folder, "run.json")):
            raise FileNotFoundError(f"{folder}: not a quac-host results folder (no run.json)")
        self.label = label or self.record.get("manifest", {}).get("name") or os.path.basename(self.folder)

    def _path(self, *parts):
        return os.path.join(self.folder, *parts)

    @property
    def record(self):
        """run.json: the manifest as run, the seed, the data's and the plugins' fingerprints."""
        with open(self._path("run.json")) as f:
            return json.load(f)

    @property
    def inputs(self):
        """{"x", "label", "target", "x_cf", ...}: the queries as the run saw them."""
        return safetensors.read(self._path("inputs.safetensors"))

    @property
    def predictions(self):
        """{"logits", "predicted", "label", "target"}."""
        return safetensors.read(self._path("predictions.safetensors"))

    @property
    def methods(self):
        """The attributors' names, sorted."""
        d = self._path("attributions")
        return sorted(f[:-len(".safetensors")] for f in os.listdir(d) if f.endswith(".safetensors")) if os.path.isdir(d) else []

    def attribution(self, method, normalized=False):
        """A method's maps: raw ("attribution") or normalised per sample to [0, 1] ("normalized")."""
        return self.attribution_file(method)["normalized" if normalized else "attribution"]

    def attribution_file(self, method):
        """Every tensor the method put (attribution, normalized, and its own extras)."""
        return safetensors.read(self._path("attributions", f"{method}.safetensors"))

    def score_summary(self, method):
        """scores/<method>.json: per scorer its median, quartiles, per-sample scores and JSON extras."""
        with open(self._path("scores", f"{method}.json")) as f:
            return json.load(f)

    def scorers(self, method):
        return sorted(self.score_summary(method).get("scorers", {}))

    def score_tensors(self, method, scorer):
        """scores/<method>.<scorer>.safetensors: "score" [N], "curve" [N, points] and the scorer's extras."""
        return safetensors.read(self._path("scores", f"{method}.{scorer}.safetensors"))

    def curve(self, method, scorer):
        """(x, curves): the curve's x axis (curve_axes, else evenly spaced in [0, 1]) and [N, points]."""
        curves = self.score_tensors(method, scorer)["curve"]
        axes = self.score_summary(method)["scorers"][scorer].get("curve_axes", {})
        x = np.asarray(axes.get("x", []), dtype=np.float64)
        if x.shape != (curves.shape[1],):
            x = np.linspace(0, 1, curves.shape[1])
        return x, curves

    def scores(self):
        """Long DataFrame: run, method, scorer, sample, score, one row per sample."""
        rows = []
        for m in self.methods:
            if not os.path.isfile(self._path("scores", f"{m}.json")):
                continue
            for s in self.scorers(m):
                score = self.score_tensors(m, s)["score"]
                rows.append(pd.DataFrame({"run": self.label, "method": m, "scorer": s,
                                          "sample": np.arange(len(score)), "score": score.astype(np.float64)}))
        cols = ["run", "method", "scorer", "sample", "score"]
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)

    def better(self, method, scorer):
        return self.score_summary(method)["scorers"][scorer].get("better", "higher")

    def comparison_files(self):
        """comparison.csv as written by `quac-host compare` (None when it has not run)."""
        p = self._path("comparison.csv")
        return pd.read_csv(p) if os.path.isfile(p) else None


def load(folder, label=None):
    return Run(folder, label)
