"""A converter in NumPy: moves each query towards the mean of the reference images of its target class
when the run gives them (reference style), else flips its sign; every query counts as converted."""
import numpy as np


class Blend:
    kind = "converter"
    parameters = {"type": "object", "additionalProperties": False, "properties": {
        "amount": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}}}

    def __init__(self, host, amount):
        self.amount = amount

    def convert(self, batch):
        x = batch["x"]
        toward = -x if batch["reference"] is None else np.broadcast_to(batch["reference"].mean(axis=0), x.shape)
        return {"counterfactual": (1 - self.amount) * x + self.amount * toward, "converted": [True] * len(x)}
