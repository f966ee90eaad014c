#!/usr/bin/env python3
"""Feeds every built-in plugin each numeric parameter at its schema's extremes and checks that the host
never dies of it.

    python3 scripts/extreme_params.py .build/release/quac-host [--work DIR] [--timeout S] [--only ID]

For each plugin manifest in plugins/ and each numeric parameter (and each numeric list's items), the
parameter is set to its minimum and to its maximum (an exclusive bound is approached from inside), the
others keep their defaults, and the plugin runs inside a small pipeline (16x16 synthetic cells, 4
samples, a small CNN) under process isolation with a per-batch timeout and a 1 GiB memory budget.
Each value is one run.

A value passes when its unit succeeds, or fails with a one-line message (memory budget, a check of the
plugin, or the timeout for values that only make the work long), or is still working when the sweep
stops its run after --wall seconds (training for 10^7 steps reports progress all along). It fails when the host or a worker
dies of a signal, a unit ends without a message, or the run's exit status is neither 0 nor 1.
Trainable explainers and converters that need a training block (empirical, SMAT, logic, StarGAN) run
with their training parameters at the extremes in the same way, from a training block on the same data.
Prints one line per value and a summary; exits 1 if any value fails.
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def numeric_params(manifest):
    """(name, type, lo, hi, is_list, min_items) for each numeric parameter."""
    out = []
    for name, s in manifest.get("parameters", {}).get("properties", {}).items():
        is_list = s.get("type") == "array"
        n = s.get("items", {}) if is_list else s
        t = n.get("type")
        if t not in ("integer", "number"):
            continue
        lo = n.get("minimum", n.get("exclusiveMinimum"))
        hi = n.get("maximum", n.get("exclusiveMaximum"))
        if "exclusiveMinimum" in n and lo is not None:
            lo = lo + 1 if t == "integer" else lo + abs(lo) * 1e-9 + 1e-9
        if "exclusiveMaximum" in n and hi is not None:
            hi = hi - 1 if t == "integer" else hi - abs(hi) * 1e-9 - 1e-9
        out.append((name, t, lo, hi, is_list, max(s.get("minItems", 1), 1)))
    return out

def base_pipeline(output):
    data = {"format": "safetensors", "x": "images", "label": "labels"}
    return {
        "name": "extremes", "output": output, "seed": 0, "batch_size": 4,
        "data": dict(data, path="data/test.safetensors", x_cf="counterfactuals", limit=4),
        "classifier": {"plugin": "org.quac.cnn-classifier", "name": "cnn",
                       "params": {"input_shape": [1, 16, 16], "num_classes": 2, "channels": [4, 4], "fc": [8], "seed": 0}},
        "attributors": [{"plugin": "org.quac.saliency", "name": "saliency"}],
        "scorers": [{"plugin": "org.quac.insertion", "params": {"steps": 4}}],
    }

def training(plugin):
    """A training block on the small data, with what the plugin's training needs."""
    data = {"format": "safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"}
    t = {"data": dict(data, path="data/train.safetensors"), "val": dict(data, path="data/val.safetensors"), "seed": 0}
    if plugin == "org.quac.empirical-explainer":
        t["targets_from"] = "saliency"
    if plugin == "org.quac.smat-explainer":
        t["teacher"] = True
    return t

# Parameters a plugin needs besides the swept one, so that it runs in the small pipeline.
NEEDS = {
    "org.quac.empirical-explainer": {"input_shape": [1, 16, 16], "channels": [4, 4], "epochs": 1},
    "org.quac.smat-explainer": {"input_shape": [1, 16, 16], "epochs": 1, "heads": ["saliency"],
                                "budgets": [4], "simulation_seeds": 1, "simulation_epochs": 1},
    "org.quac.layer-integrated-gradients": {"layer": "features.0"},
    "org.quac.grad-cam": {"layer": "features.0"},
    "org.quac.stargan-converter": {"image_size": 16, "input_channels": 1, "num_classes": 2, "channels": 4,
                                   "max_channels": 8, "style_dim": 4, "latent_dim": 4, "mapping_dim": 8, "steps": 2,
                                   "batch_size": 4, "log_every": 1, "val_every": 0, "sample_every": 0},
    "org.quac.optimization-converter": {"steps": 2},
}
# Skipped: they explain concepts, not images, or need a rule model (the logic family has its own tests).
SKIP = {"org.quac.logic-explainer", "org.quac.rule-accuracy", "org.quac.rule-fidelity", "org.quac.rule-complexity",
        "org.quac.precomputed-converter"}

def value_for(t, v):
    return int(v) if t == "integer" else float(v)

def entry(m, name, params, timeout):
    e = {"plugin": m["id"], "name": name, "params": params, "timeout": timeout}
    if m["id"] in ("org.quac.empirical-explainer", "org.quac.smat-explainer", "org.quac.stargan-converter"):
        e["train"] = training(m["id"])
    return e

def variants(m):
    for name, t, lo, hi, is_list, k in numeric_params(m):
        for which, v in (("min", lo), ("max", hi)):
            if v is None:
                continue
            params = dict(NEEDS.get(m["id"], {}))
            val = value_for(t, v)
            params[name] = [val] * k if is_list else val
            yield f"{name}={which}", params

def run(host, manifest, work, env, wall):
    shutil.rmtree(work / manifest["output"], ignore_errors=True)   # nothing reused from the last value
    path = work / "pipeline.json"
    path.write_text(json.dumps(manifest, indent=1))
    t0 = time.time()
    # Values that only make the work long (training steps, epochs) keep reporting progress, so the
    # per-batch timeout never fires: the whole run gets `wall` seconds, then the sweep stops it.
    p = subprocess.Popen([host, "run", str(path), "--force"], cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=wall)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, out, time.time() - t0
    return p.returncode, out, time.time() - t0

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("host")
    ap.add_argument("--work", default=None)
    ap.add_argument("--timeout", type=float, default=3)
    ap.add_argument("--only", default=None, help="one plugin id")
    ap.add_argument("--from", dest="start", default=None, help="start at this plugin id (in sorted order)")
    ap.add_argument("--wall", type=float, default=30, help="seconds a whole run may take before the sweep stops it")
    a = ap.parse_args()
    host = str(Path(a.host).resolve())
    work = Path(a.work or tempfile.mkdtemp(prefix="quac-extremes-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "data/test.safetensors").exists():
        subprocess.run([host, "data", "synth", "--output", str(work / "data"), "--size", "16", "--count", "8",
                        "--format", "safetensors"], check=True, capture_output=True)
    env = dict(os.environ, QUAC_PLUGIN_PATH=str(ROOT / "plugins"), QUAC_MEMORY_BUDGET_MB="1024")
    failures, count = [], 0
    for f in sorted((ROOT / "plugins").glob("*.json")):
        m = json.loads(f.read_text())
        if m["id"] in SKIP or (a.only and m["id"] != a.only) or (a.start and m["id"] < a.start):
            continue
        vs = list(variants(m))
        if not vs:
            continue
        kind = m.get("kind")
        # One value per run: a value refused when the plugin is created stops its run (as it should),
        # and must not hide the other values.
        batches = [[v] for v in vs]
        for batch in batches:
            p = base_pipeline(f"out-{m['id']}")
            names = []
            for i, (label, params) in enumerate(batch):
                name = f"v{i}"
                names.append((name, label))
                e = entry(m, name, params, a.timeout)
                if kind == "attributor":
                    p["attributors"].append(e)
                elif kind == "scorer":
                    e.pop("name")
                    e["name"] = name
                    p["scorers"].append(e)
                elif kind == "classifier":
                    e["params"] = dict(p["classifier"]["params"], **params) if m["id"] == "org.quac.cnn-classifier" else \
                        dict({"input_shape": [1, 16, 16], "num_classes": 2, "seed": 0}, **params)
                    p["classifier"] = e
                elif kind == "converter":
                    p["converter"] = e
                    p["data"].pop("x_cf")
            rc, log, secs = run(host, p, work, env, a.wall)
            if rc is None:
                for name, label in names:
                    count += 1
                    print(f"pass {m['id']} {label} (stopped by the sweep after {secs:.0f} s: still working)", flush=True)
                continue
            lines = [l for l in log.splitlines() if l.strip()]
            died = re.compile(r"signal|crashed|ended \(exit status|ended unexpectedly", re.I)
            for name, label in names:
                count += 1
                # Every line about the value's unit (its training, maps, scores or counterfactuals), or
                # the run's error when it stopped before any unit.
                mine = [l for l in lines if re.match(rf"(attribute {name}|score \S+ with {name}|train {name}|convert|classify)\b", l)]
                failed = [l for l in mine if ": failed" in l] or [l for l in lines if l.startswith("error:")]
                status = "done" if rc == 0 else (failed[0] if failed else "exit %d, no message" % rc)
                bad = rc not in (0, 1) or (rc == 1 and not failed) or any(died.search(l) for l in failed)
                print(f"{'FAIL' if bad else 'pass'} {m['id']} {label} ({secs:.1f} s for the run, exit {rc}): {status[:220]}", flush=True)
                if bad:
                    failures.append(f"{m['id']} {label}")
    print(f"{count} values, {len(failures)} failed" + (": " + ", ".join(failures) if failures else ""))
    sys.exit(1 if failures else 0)

if __name__ == "__main__":
    main()
