#!/usr/bin/env python3
"""The QuAC evaluator's reference algorithm (funkelab/quac: evaluation.Processor, BaseEvaluator.evaluate,
optimal_threshold_index, report.Report's interpolation and score), re-implemented with the same
libraries and the same array types, and the golden files of the Swift scorer's tests.

    ~/.cache/quac-oracle/bin/python scripts/golden/quac_evaluator_reference.py \
        Tests/QuacHostTests/Fixtures/quac_evaluator

(bash scripts/oracle-env.sh makes ~/.cache/quac-oracle: Debian's torch, OpenCV 4.8,
NumPy 1.24, SciPy 1.10.) The classifier is linear, logits = flatten(x) @ W.T + b, given as weights so
the Swift side runs the same model (org.quac.mlp-classifier with hidden = 0 reads fc2.weight and
fc2.bias from the same file).

Types as in the reference: images, attributions and soft masks float32; thresholds float64 from
np.arange (compared with a float32 map, NumPy 1.x casts them to float32); mask sizes float64;
probabilities and score changes float32 (torch); curve and score float64 (np.interp via interp1d,
np.trapz).

Each case file <case>.safetensors holds the inputs (x, x_cf, attribution, source, target,
fc2.weight, fc2.bias) and the reference outputs (score, curve, optimal_index, optimal_threshold,
normalized_mask_sizes, score_changes, mask, hybrid, query_prediction, generated_prediction,
counterfactual_prediction); __metadata__ has channel_wise and num_classes. kernels.safetensors holds
OpenCV's elliptical structuring elements, Gaussian kernels, and a closing and a blur of a known
pattern, for the unit tests of the pieces.
"""
import json
import os
import sys

import cv2
import numpy as np
import torch
from safetensors.numpy import save_file
from scipy.interpolate import interp1d
from torch.nn import functional as F


# ---- the reference algorithm --------------------------------------------------------------------

class Processor:
    """Attribution -> soft mask (the reference's default Processor)."""

    def __init__(self, gaussian_kernel_size=11, struct=10, channel_wise=True):
        self.gaussian_kernel_size = gaussian_kernel_size
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (struct, struct))
        self.channel_wise = channel_wise

    def create_mask(self, attribution, threshold):
        channels = attribution.shape[0]
        mask_size = 0
        mask = []
        for c in range(channels):
            if self.channel_wise:
                channel_mask = attribution[c, :, :] > threshold
            else:
                channel_mask = np.any(attribution > threshold, axis=0)
            channel_mask = cv2.morphologyEx(channel_mask.astype(np.uint8), cv2.MORPH_CLOSE, self.kernel)
            mask_size += np.sum(channel_mask)
            mask.append(cv2.GaussianBlur(channel_mask.astype(np.float32),
                                         (self.gaussian_kernel_size, self.gaussian_kernel_size), 0))
        return np.array(mask), mask_size


def linear_classifier(weight, bias):
    d = weight.shape[1]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, weight.shape[0]))
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(weight))
        model[1].bias.copy_(torch.from_numpy(bias))
    return model.eval()


@torch.no_grad()
def run_inference(classifier, im):
    t = torch.tensor(im)
    if t.dim() == 3:
        t = t.unsqueeze(0)
    return F.softmax(classifier(t.float()), dim=1).cpu().numpy()


def evaluate(classifier, x, x_t, y_t, attribution, processor, num_thresholds=200, vmin=-1, vmax=1):
    """BaseEvaluator.evaluate plus quantify's predictions, for one query."""
    classification_real = run_inference(classifier, x)[0]
    generated = run_inference(classifier, x_t)[0]
    thresholds, mask_sizes, hybrids, masks = [], [], [], []
    for threshold in np.arange(vmin, vmax, (vmax - vmin) / num_thresholds):
        mask, mask_size = processor.create_mask(attribution, threshold)
        hybrid = x_t * mask + x * (1.0 - mask)
        thresholds.append(threshold)
        mask_sizes.append(mask_size / np.prod(x.shape))
        hybrids.append(hybrid)
        masks.append(mask)
    classification_hybrid = run_inference(classifier, np.stack(hybrids, axis=0))
    score_change = classification_hybrid[:, y_t] - classification_real[y_t]
    # optimal_threshold_index
    optimal_index = int(np.argmin(np.abs(np.array(mask_sizes)) - np.array(score_change)))
    return {
        "thresholds": np.array(thresholds),
        "mask_sizes": np.array(mask_sizes),
        "score_change": score_change,
        "optimal_index": optimal_index,
        "optimal_threshold": thresholds[optimal_index],
        "mask": masks[optimal_index],
        "hybrid": hybrids[optimal_index],
        "query_prediction": classification_real,
        "generated_prediction": generated,
        "counterfactual_prediction": classification_hybrid[optimal_index],
    }


INTERP_MASK_VALUES = np.arange(0.0, 1.0001, 0.01)


def quac_curve(normalized_mask_sizes, score_changes):
    """Report.interpolate_score_values."""
    f = interp1d(np.concatenate([[1], normalized_mask_sizes, [0]]),
                 np.concatenate([[score_changes[0]], score_changes, [0]]))
    return [f(x) for x in INTERP_MASK_VALUES]


def quac_score(curve):
    """Report.get_quac_score."""
    return np.trapz(curve, INTERP_MASK_VALUES)


def evaluate_all(weight, bias, x, x_cf, attribution, target, channel_wise=True):
    """The reference on every sample: a dict of stacked outputs."""
    classifier = linear_classifier(weight, bias)
    processor = Processor(channel_wise=channel_wise)
    out = {k: [] for k in ("score", "curve", "optimal_index", "optimal_threshold", "normalized_mask_sizes",
                           "score_changes", "mask", "hybrid", "query_prediction", "generated_prediction",
                           "counterfactual_prediction")}
    for i in range(x.shape[0]):
        r = evaluate(classifier, x[i], x_cf[i], int(target[i]), attribution[i], processor)
        curve = quac_curve(r["mask_sizes"], r["score_change"])
        out["score"].append(quac_score(curve))
        out["curve"].append(np.array(curve, dtype=np.float64))
        out["optimal_index"].append(r["optimal_index"])
        out["optimal_threshold"].append(r["optimal_threshold"])
        out["normalized_mask_sizes"].append(r["mask_sizes"])
        out["score_changes"].append(r["score_change"])
        for k in ("mask", "hybrid", "query_prediction", "generated_prediction", "counterfactual_prediction"):
            out[k].append(r[k])
    return {
        "score": np.array(out["score"], dtype=np.float64),
        "curve": np.stack(out["curve"]).astype(np.float64),
        "optimal_index": np.array(out["optimal_index"], dtype=np.int64),
        "optimal_threshold": np.array(out["optimal_threshold"], dtype=np.float64),
        "normalized_mask_sizes": np.stack(out["normalized_mask_sizes"]).astype(np.float64),
        "score_changes": np.stack(out["score_changes"]).astype(np.float32),
        "mask": np.stack(out["mask"]).astype(np.float32),
        "hybrid": np.stack(out["hybrid"]).astype(np.float32),
        "query_prediction": np.stack(out["query_prediction"]).astype(np.float32),
        "generated_prediction": np.stack(out["generated_prediction"]).astype(np.float32),
        "counterfactual_prediction": np.stack(out["counterfactual_prediction"]).astype(np.float32),
    }


# ---- golden files -------------------------------------------------------------------------------

def normalized(a):
    """The host's per-sample normalisation: |a|, min-max; a constant map becomes zeros (float32)."""
    a = np.abs(a).astype(np.float32)
    out = np.zeros_like(a)
    for i in range(a.shape[0]):
        lo, hi = a[i].min(), a[i].max()
        if hi > lo:
            out[i] = (a[i] - lo) * (np.float32(1) / (hi - lo))
    return out


def smooth_maps(rng, n, c, h, w, sigma=2.0):
    from scipy.ndimage import gaussian_filter
    raw = rng.standard_normal((n, c, h, w)).astype(np.float32)
    for i in range(n):
        for ch in range(c):
            raw[i, ch] = gaussian_filter(raw[i, ch], sigma)
    return normalized(raw)


def make_case(rng, n, c, h, w, classes, maps, channel_wise=True):
    """Random queries; each counterfactual moves its query towards the target class (so the score
    changes rise with the mask, by a few logits in all), plus noise."""
    d = c * h * w
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    weight = (rng.standard_normal((classes, d)) * 7.0 / d).astype(np.float32)
    bias = (rng.standard_normal(classes) * 0.1).astype(np.float32)
    source = rng.integers(0, classes, n).astype(np.int64)
    target = ((source + 1) % classes).astype(np.int64)
    toward = np.sign(weight[target] - weight[source]).reshape(x.shape)
    x_cf = np.clip(x + 0.5 * toward + rng.normal(0, 0.2, x.shape), -1, 1).astype(np.float32)
    maps = maps.astype(np.float32)
    tensors = {"x": x, "x_cf": x_cf, "attribution": maps, "source": source, "target": target,
               "fc2.weight": weight, "fc2.bias": bias}
    tensors.update(evaluate_all(weight, bias, x, x_cf, maps, target, channel_wise=channel_wise))
    meta = {"channel_wise": "true" if channel_wise else "false", "num_classes": str(classes)}
    return tensors, meta


def cases(rng):
    out = {}
    # Continuous random maps, grayscale 16x16.
    out["gray16_random"] = make_case(rng, 3, 1, 16, 16, 2, normalized(rng.uniform(0, 1, (3, 1, 16, 16))))
    # Ties: maps quantised to k/10 in float32, so many pixels share a value and values sit exactly on
    # float32(threshold).
    q = (np.round(rng.uniform(0, 1, (2, 1, 32, 32)) * 10).astype(np.float32) / np.float32(10))
    q[:, :, 0, 0] = 0
    q[:, :, 0, 1] = 1
    out["gray32_ties"] = make_case(rng, 2, 1, 32, 32, 2, q)
    # All-equal maps: zeros (the host's normalisation of a constant map) and 0.5.
    const = np.zeros((2, 1, 16, 16), np.float32)
    const[1] = 0.5
    out["gray16_constant"] = make_case(rng, 2, 1, 16, 16, 2, const)
    # One hot pixel: interior (closes to nothing: OpenCV's closing with an even element is not
    # extensive), and at a corner and an edge of other channels.
    hot = np.zeros((2, 3, 16, 16), np.float32)
    hot[0, 1, 7, 8] = 1
    hot[1, 0, 0, 0] = 1
    hot[1, 2, 15, 7] = 1
    hot[1, 1, 4, 4] = 0.5
    out["rgb16_onehot"] = make_case(rng, 2, 3, 16, 16, 2, hot)
    # Smooth RGB maps, three classes.
    out["rgb32_smooth"] = make_case(rng, 2, 3, 32, 32, 3, smooth_maps(rng, 2, 3, 32, 32))
    # Smaller than the structuring element, not square.
    out["gray8x12_random"] = make_case(rng, 2, 1, 8, 12, 2, normalized(rng.uniform(0, 1, (2, 1, 8, 12))))
    # Rows wider than one 64-bit word.
    out["gray20x70_smooth"] = make_case(rng, 1, 1, 20, 70, 2, smooth_maps(rng, 1, 1, 20, 70, sigma=3.0))
    # channel_wise=False (np.any over channels).
    out["rgb16_any"] = make_case(rng, 1, 3, 16, 16, 2, smooth_maps(rng, 1, 3, 16, 16), channel_wise=False)
    return out


def kernels(rng):
    t = {}
    for s in (1, 2, 3, 4, 5, 7, 10, 15):
        t[f"ellipse_{s}"] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (s, s)).astype(np.uint8)
    for n in (1, 3, 5, 7, 9, 11, 13, 21):
        t[f"gaussian_{n}_f64"] = cv2.getGaussianKernel(n, 0, ktype=cv2.CV_64F).ravel().astype(np.float64)
        t[f"gaussian_{n}_f32"] = cv2.getGaussianKernel(n, 0, ktype=cv2.CV_32F).ravel().astype(np.float32)
    # A known pattern (sparse dots, a bar, a ring and border pixels), its closing and its blur.
    p = (rng.uniform(0, 1, (24, 70)) > 0.93).astype(np.uint8)
    p[10:13, 5:30] = 1
    p[0, :] = 0
    p[0, 0] = 1
    p[23, 69] = 1
    cv2.circle(p, (50, 12), 6, 1, 1)
    t["pattern"] = p
    closed = cv2.morphologyEx(p, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (10, 10)))
    t["pattern_closed"] = closed
    t["pattern_closed_blurred"] = cv2.GaussianBlur(closed.astype(np.float32), (11, 11), 0)
    t["pattern_dilated"] = cv2.dilate(p, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (10, 10)))
    t["thresholds"] = np.arange(-1, 1, 2 / 200)
    t["interp_mask_values"] = INTERP_MASK_VALUES
    return t


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20240611)
    torch.manual_seed(0)
    names = []
    for name, (tensors, meta) in cases(rng).items():
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.path.join(outdir, f"{name}.safetensors"),
                  metadata=meta)
        names.append(name)
        print(name, "scores", np.round(tensors["score"], 6).tolist(), "optimal", tensors["optimal_index"].tolist())
    save_file({k: np.ascontiguousarray(v) for k, v in kernels(rng).items()}, os.path.join(outdir, "kernels.safetensors"))
    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump({"cases": names, "versions": {"numpy": np.__version__, "opencv": cv2.__version__,
                                                 "scipy": __import__("scipy").__version__,
                                                 "torch": torch.__version__}}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/quac_evaluator")
