# The Python half of the org.quac.python bridge, compiled into the bridge library. The C half hands it
# the method's module path, class and parameters, and each call's inputs as read-only NumPy views of
# the host's memory; this half loads the class, checks what the class declares (kind, parameter schema,
# requirements), calls the method and checks what it returns before C copies it into host tensors.
import importlib.util
import json
import math
import os
import site
import sys
import traceback

import numpy as np

# The host's stdout is its own (quac-host run --json prints its summary there): what a method prints
# goes to stderr.
sys.stdout = sys.stderr

# The method each kind's class implements, and the output it must return.
KIND_METHODS = {"attributor": "attribute", "scorer": "score", "converter": "convert", "classifier": "forward"}
REQUIRED_OUTPUT = {"attributor": "attribution", "scorer": "score", "converter": "counterfactual"}
KNOWN_REQUIREMENTS = {"classifier", "classifier.vjp", "classifier.modified-backward", "classifier.layers",
                      "classifier.randomize", "method.rerun", "counterfactual", "converter"}
# The bridge's own parameters; everything else goes to the method.
BRIDGE_PARAMETERS = {"module", "class", "python_path", "venv"}


class MethodError(Exception):
    """A problem with what a method declares or returns; its message names the method's file and line."""


def add_paths(paths, venv):
    """Puts a virtual environment's site-packages and extra folders first on sys.path."""
    venvs = [v for v in (venv, os.environ.get("VIRTUAL_ENV")) if v]
    folders = []
    for v in venvs:
        lib = os.path.join(v, "lib")
        if not os.path.isdir(lib):
            raise MethodError(f"venv {v}: not a virtual environment (no lib/ folder)")
        wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
        sp = os.path.join(lib, wanted, "site-packages")
        if not os.path.isdir(sp):
            found = ", ".join(sorted(os.listdir(lib))) or "nothing"
            raise MethodError(f"venv {v}: no lib/{wanted}/site-packages (the bridge embeds Python "
                              f"{sys.version_info.major}.{sys.version_info.minor}; lib/ holds {found})")
        folders.append(sp)
    for p in reversed(list(paths) + folders):
        if p not in sys.path:
            sys.path.insert(0, p)
            site.addsitedir(p)  # runs its .pth files; the folder is already first


def where(obj):
    """file:line of a class or function, for messages."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        return f"{code.co_filename}:{code.co_firstlineno}"
    try:
        import inspect
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except Exception:
        return getattr(sys.modules.get(getattr(obj, "__module__", ""), None), "__file__", "?")


def format_exception(exc, module_file):
    """`Type: message (at file:line)`, the innermost frame; plus the innermost frame in the method's own
    file when the innermost is elsewhere (inside NumPy, say)."""
    if isinstance(exc, MethodError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    text = f"{type(exc).__name__}: " + " ".join(str(exc).split())  # one line, as the host's messages are
    if not frames:
        return text
    last = frames[-1]
    text += f" (at {last.filename}:{last.lineno}"
    own = [f for f in frames if module_file and os.path.abspath(f.filename) == module_file]
    if own and own[-1] is not last:
        text += f", from {own[-1].filename}:{own[-1].lineno}"
    return text + ")"


# --- Parameters: the subset of JSON Schema method authors need -----------------------------------------

_TYPES = {"boolean": (bool,), "integer": (int,), "number": (int, float), "string": (str,),
          "array": (list,), "object": (dict,)}


def _check_value(name, value, schema):
    t = schema.get("type")
    if t is not None:
        ok = isinstance(value, _TYPES.get(t, (object,))) and not (t in ("integer", "number") and isinstance(value, bool))
        if t == "integer" and isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
        if not ok:
            raise MethodError(f"parameter \"{name}\": expected {t}, got {json.dumps(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise MethodError(f"parameter \"{name}\": {json.dumps(value)} is not one of {json.dumps(schema['enum'])}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, bad in (("minimum", lambda v, b: v < b), ("maximum", lambda v, b: v > b),
                         ("exclusiveMinimum", lambda v, b: v <= b), ("exclusiveMaximum", lambda v, b: v >= b)):
            if key in schema and bad(value, schema[key]):
                raise MethodError(f"parameter \"{name}\": {value} violates {key} {schema[key]}")
    if isinstance(value, list) and "items" in schema:
        value = [_check_value(f"{name}[{i}]", v, schema["items"]) for i, v in enumerate(value)]
    return value


def check_parameters(schema, given, where_text):
    """The method's parameters with defaults filled in; a one-line error naming the parameter otherwise."""
    props = schema.get("properties", {})
    out = {}
    for key, value in given.items():
        if key in props:
            try:
                out[key] = _check_value(key, value, props[key])
            except MethodError as e:
                raise MethodError(f"{where_text}: {e}") from None
        elif schema.get("additionalProperties", True) is False:
            raise MethodError(f"{where_text}: unknown parameter \"{key}\" (known: {', '.join(sorted(props)) or 'none'})")
        else:
            out[key] = value
    for key, s in props.items():
        if key not in out and "default" in s:
            out[key] = s["default"]
    for key in schema.get("required", []):
        if key not in out:
            raise MethodError(f"{where_text}: missing required parameter \"{key}\"")
    return out


# --- Loading ---------------------------------------------------------------------------------------------

class Loaded:
    """One method instance, with what its messages need."""

    def __init__(self, obj, cls, kind, module_file):
        self.obj, self.cls, self.kind, self.module_file = obj, cls, kind, module_file
        self.requires = list(getattr(cls, "requires", []))
        self.explains = getattr(cls, "explains", "inputs")
        self.checked_requirements = False


def load(kind, params_json, host):
    params = json.loads(params_json)
    module_path, class_name = params.get("module"), params.get("class")
    if not isinstance(module_path, str) or not isinstance(class_name, str):
        raise MethodError("parameters \"module\" (the method's .py file) and \"class\" (its class) are required")
    add_paths(params.get("python_path", []), params.get("venv"))
    module_file = os.path.abspath(module_path)
    if not os.path.isfile(module_file):
        raise MethodError(f"module {module_path}: no such file")
    name = "quac_method_" + "".join(c if c.isalnum() else "_" for c in module_file)
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, module_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise MethodError(f"{module_file}: no class \"{class_name}\"")
    declared = getattr(cls, "kind", None)
    if declared != kind:
        raise MethodError(f"{where(cls)}: {class_name}.kind is {json.dumps(declared)}; this bridge plugin runs a {kind} "
                          f"(set kind = \"{kind}\" or use org.quac.python.{declared})")
    method = KIND_METHODS[kind]
    if not callable(getattr(cls, method, None)):
        raise MethodError(f"{where(cls)}: {class_name} declares kind \"{kind}\" but has no method {method}(...)")
    for r in getattr(cls, "requires", []):
        if r not in KNOWN_REQUIREMENTS:
            raise MethodError(f"{where(cls)}: {class_name}.requires: unknown requirement {json.dumps(r)} "
                              f"(known: {', '.join(sorted(KNOWN_REQUIREMENTS))})")
    schema = getattr(cls, "parameters", {"type": "object", "properties": {}})
    own = {k: v for k, v in params.items() if k not in BRIDGE_PARAMETERS}
    values = check_parameters(schema, own, f"{where(cls)}: {class_name}")
    return Loaded(cls(host, **values), cls, kind, module_file)


# --- Calls -----------------------------------------------------------------------------------------------

def _check_requirements(loaded, host):
    if loaded.checked_requirements:
        return
    needs = set(loaded.requires)
    if needs & {"classifier", "classifier.vjp"}:
        info = host.classifier_info()
        if "classifier.vjp" in needs and not info["has_vjp"]:
            raise MethodError(f"{where(loaded.cls)}: {loaded.cls.__name__} requires classifier.vjp, and the run's classifier is forward-only")
    loaded.checked_requirements = True


def _first_nonfinite(a):
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    idx = np.unravel_index(int(np.argmax(bad)), a.shape)
    return ("NaN" if math.isnan(float(a[idx])) else "infinity"), list(map(int, idx))


def _outputs(loaded, result, batch, method):
    """Splits a method's dict into tensors (NumPy arrays, float32 or int64, C order) and a JSON object
    (everything else), checking the kind's required output and its shape (C checks that floats are
    finite as it copies them)."""
    def site():  # only an error needs it
        return f"{where(getattr(loaded.cls, method))} ({loaded.cls.__name__}.{method})"
    if not isinstance(result, dict):
        raise MethodError(f"{site()}: returned {type(result).__name__}; expected a dict of outputs")
    tensors, extra = [], {}
    for name, value in result.items():
        if not isinstance(name, str):
            raise MethodError(f"{site()}: output names must be strings, got {name!r}")
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "iub":
                value = np.ascontiguousarray(value, dtype=np.int64)
            else:
                value = np.ascontiguousarray(value, dtype=np.float32)  # C checks finiteness as it copies
            tensors.append((name, value))
        else:
            extra[name] = value.tolist() if isinstance(value, np.generic) else value
    required = REQUIRED_OUTPUT.get(loaded.kind)
    names = [n for n, _ in tensors]
    if required is not None:
        if required not in names:
            raise MethodError(f"{site()}: no \"{required}\" array among its outputs ({', '.join(result) or 'none'})")
        got = tensors[names.index(required)][1].shape
        x = batch["x"]
        if loaded.kind == "scorer":
            want, like = (x.shape[0],), "[N]"
        elif loaded.kind == "attributor" and loaded.explains == "concepts":
            want, like = tuple(batch["concepts"].shape) if batch.get("concepts") is not None else None, "concepts"
        else:
            want, like = x.shape, "x"
        if want is not None and tuple(got) != tuple(want):
            raise MethodError(f"{site()}: output \"{required}\" has shape {list(got)}, expected {list(want)} (like {like})")
    text = None
    if extra:
        try:
            text = json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise MethodError(f"{site()}: outputs that are not arrays must be JSON values: {e}")
    return tensors, text


def nonfinite_message(loaded, name, value):
    """The error for an output the C copy found a NaN or infinity in."""
    method = KIND_METHODS[loaded.kind]
    bad = _first_nonfinite(value)
    return f"{where(getattr(loaded.cls, method))} ({loaded.cls.__name__}.{method}): output \"{name}\": {bad[0]} at {bad[1]}"


def call(loaded, host, batch):
    """Runs the kind's method on a batch dict; returns (tensors, json text or None)."""
    _check_requirements(loaded, host)
    method = KIND_METHODS[loaded.kind]
    if batch.get("method_json") is not None:
        batch["method_json"] = json.loads(batch["method_json"])
    result = getattr(loaded.obj, method)(batch)
    return _outputs(loaded, result, batch, method)


def classifier_info(loaded):
    info = loaded.obj.info()
    site_text = f"{where(loaded.cls.info)} ({loaded.cls.__name__}.info)"
    try:
        shape = [int(s) for s in info["input_shape"]]
        out = {"num_classes": int(info["num_classes"]), "input_shape": shape,
               "has_vjp": bool(info.get("has_vjp", callable(getattr(loaded.obj, "vjp", None))))}
    except (KeyError, TypeError, ValueError) as e:
        raise MethodError(f"{site_text}: expected a dict with num_classes and input_shape: {e}")
    if not 1 <= len(shape) <= 4:
        raise MethodError(f"{site_text}: input_shape must have 1 to 4 dimensions, got {shape}")
    loaded.num_classes = out["num_classes"]
    return out


def classifier_call(loaded, name, x, grad_logits):
    """forward (grad_logits None) or vjp of a classifier method, checked: logits [N, classes], grad like x."""
    method = getattr(loaded.obj, name, None)
    if not hasattr(loaded, "num_classes"):
        classifier_info(loaded)
    if method is None:
        raise MethodError(f"{where(loaded.cls)}: {loaded.cls.__name__} has no {name}(...)")
    site_text = f"{where(getattr(loaded.cls, name))} ({loaded.cls.__name__}.{name})"
    result = method(x) if grad_logits is None else method(x, grad_logits)
    a = np.ascontiguousarray(result, dtype=np.float32)
    want = (x.shape[0], loaded.num_classes) if grad_logits is None else x.shape
    if a.shape != tuple(want):
        raise MethodError(f"{site_text}: returned shape {list(a.shape)}, expected {list(want)}")
    bad = _first_nonfinite(a)
    if bad is not None:
        raise MethodError(f"{site_text}: {bad[0]} at {bad[1]}")
    return a
