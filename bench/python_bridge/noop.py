"""A no-op attributor for the bridge's overhead benchmark: returns zeros shaped like x, made once per
shape, so that each call costs the method nothing and what is measured is the bridge's own work
(the batch's views, the call, the output's checks and its one copy into a host tensor)."""
import numpy as np


class NoOp:
    kind = "attributor"

    def __init__(self, host):
        self.zeros = {}

    def attribute(self, batch):
        shape = batch["x"].shape
        if shape not in self.zeros:
            self.zeros[shape] = np.zeros(shape, np.float32)
        return {"attribution": self.zeros[shape]}


class FreshZeros:
    """The same, with a new array each call (NumPy's allocation and its page faults included)."""
    kind = "attributor"

    def __init__(self, host):
        pass

    def attribute(self, batch):
        return {"attribution": np.zeros(batch["x"].shape, np.float32)}
