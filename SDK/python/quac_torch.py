"""The host's classifier as a torch.nn.Module, for methods written with PyTorch (Captum's included).

Inside a method run by org.quac.python, `HostModel(host)` is a module whose forward is the run's
classifier (host.forward) and whose backward is its vector-Jacobian product (host.vjp), joined by a
torch.autograd.Function. Any gradient method then runs against any classifier the host has, whatever
it is written in. Needs torch; the bridge finds it on sys.path, a "venv" or "python_path".

    from captum.attr import IntegratedGradients
    model = HostModel(host)
    ig = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=source)

Only first derivatives exist (the VJP is not itself differentiable), which is what gradient
attribution methods need.
"""
import numpy as np
import torch


def _array(t):
    """A float32 C-contiguous NumPy view of a CPU tensor (a copy only when needed)."""
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


class _HostClassifier(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, host):
        ctx.host = host
        ctx.save_for_backward(x)
        return torch.from_numpy(host.forward(_array(x))).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_logits):
        (x,) = ctx.saved_tensors
        grad_x = ctx.host.vjp(_array(x), _array(grad_logits))
        return torch.from_numpy(grad_x).to(x.dtype), None


class HostModel(torch.nn.Module):
    """The run's classifier: logits [N, classes] of inputs [N, sample shape...]."""

    def __init__(self, host):
        super().__init__()
        self.host = host

    def forward(self, x):
        return _HostClassifier.apply(x, self.host)


def batch_tensors(batch):
    """x (float32) and source (int64) of a batch as torch tensors (copies: the batch's arrays are
    read-only views of the host's memory)."""
    return torch.tensor(np.array(batch["x"])), torch.tensor(np.array(batch["source"]))
