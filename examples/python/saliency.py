"""Saliency (Simonyan et al., 2014) as a quac-host plugin in NumPy: |d f_y(x) / d x|, y the source class.
Run it with org.quac.python.attributor: {"module": "saliency.py", "class": "Saliency"}."""
import numpy as np


class Saliency:
    kind = "attributor"
    requires = ["classifier.vjp"]
    parameters = {"type": "object", "additionalProperties": False, "properties": {
        "absolute": {"type": "boolean", "default": True, "description": "|gradient| (false keeps the sign)"}}}

    def __init__(self, host, absolute):
        self.host, self.absolute = host, absolute

    def attribute(self, batch):
        classes = self.host.classifier_info()["num_classes"]
        one_hot = np.eye(classes, dtype=np.float32)[batch["source"]]  # grad_logits picks f_y
        grad = self.host.vjp(batch["x"], one_hot)
        return {"attribution": np.abs(grad) if self.absolute else grad}
