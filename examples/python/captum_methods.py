"""Captum's methods as quac-host attributors, run against the run's classifier through the host
(SDK/python/quac_torch.py). Needs torch and captum: give the bridge a "venv" that has them, and
"python_path" the folder of quac_torch.py (see pipeline.json)."""
import numpy as np
import torch
from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel
from quac_torch import HostModel, batch_tensors


class _Captum:
    kind = "attributor"
    requires = ["classifier.vjp"]
    stochastic = False  # methods that draw noise run sample by sample, each from the batch's seed

    def __init__(self, host, **params):
        self.model, self.params = HostModel(host), params

    def attribute(self, batch):
        x, source = batch_tensors(batch)
        if not self.stochastic:
            return {"attribution": self.explain(x, source, batch).detach().numpy()}
        # The host's contract: a sample's map does not depend on the others in its batch.
        maps = []
        for i in range(len(x)):
            torch.manual_seed(batch["seed"] % 2**63)
            np.random.seed(batch["seed"] % 2**32)  # Captum draws some choices with NumPy
            one = {k: (v[i:i + 1] if isinstance(v, np.ndarray) else v) for k, v in batch.items()}
            maps.append(self.explain(x[i:i + 1], source[i:i + 1], one).detach())
        return {"attribution": torch.cat(maps).numpy() if maps else np.zeros(x.shape, np.float32)}


class IntegratedGradientsMethod(_Captum):
    """Integrated Gradients from an all-zero baseline."""
    parameters = {"type": "object", "additionalProperties": False, "properties": {
        "n_steps": {"type": "integer", "minimum": 1, "default": 50},
        "method": {"type": "string", "default": "gausslegendre",
                   "enum": ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]}}}

    def explain(self, x, source, batch):
        return IntegratedGradients(self.model).attribute(x, baselines=torch.zeros_like(x), target=source, **self.params)


class GradientShapMethod(_Captum):
    """GradientShap against a baseline distribution of zeros and the counterfactuals (when the run has them)."""
    stochastic = True
    parameters = {"type": "object", "additionalProperties": False, "properties": {
        "n_samples": {"type": "integer", "minimum": 1, "default": 16},
        "stdevs": {"type": "number", "minimum": 0, "default": 0.1}}}

    def explain(self, x, source, batch):
        baselines = [torch.zeros_like(x[:1])]
        if batch["x_cf"] is not None:
            baselines.append(torch.tensor(np.array(batch["x_cf"])))
        return GradientShap(self.model).attribute(x, baselines=torch.cat(baselines), target=source, **self.params)


class SmoothIntegratedGradients(_Captum):
    """NoiseTunnel(IntegratedGradients): IG averaged over noisy copies of the input (SmoothGrad)."""
    stochastic = True
    parameters = {"type": "object", "additionalProperties": False, "properties": {
        "nt_samples": {"type": "integer", "minimum": 1, "default": 8},
        "stdevs": {"type": "number", "minimum": 0, "default": 0.1},
        "n_steps": {"type": "integer", "minimum": 1, "default": 16}}}

    def explain(self, x, source, batch):
        p = self.params
        return NoiseTunnel(IntegratedGradients(self.model)).attribute(
            x, nt_type="smoothgrad", nt_samples=p["nt_samples"], stdevs=p["stdevs"],
            baselines=torch.zeros_like(x), target=source, n_steps=p["n_steps"])
