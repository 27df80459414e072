"""Classifiers trained outside mistrust: a ``torch.export`` program or a factory plus weights.

Both are wrapped in :class:`OutsideModel`, which computes logits (what the model
returns) and the features of its last linear layer (that layer's input), so the
post-hoc variants (temperature, last-layer Laplace) run on any model.

Loading never unpickles: a state dict is read with ``torch.load(weights_only=True)``;
a ``.pt2`` archive is checked to hold tensors only (no pickled weights or custom
objects, which ``torch.export.load`` would unpickle) before it is loaded.
TorchScript files are not accepted: TorchScript is deprecated in PyTorch, and a
scripted archive carries its own code (Python source it compiles on load), which
``torch.export`` replaces with a plain graph of ATen operators.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import pickle
import sys
import types
import weakref
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mistrust.errors import CheckpointError, InputError

log = logging.getLogger(__name__)

__all__ = [
    "OutsideModel",
    "check_export_archive",
    "factory_code",
    "find_last_linear",
    "import_factory",
    "load_exported",
    "load_factory_model",
    "read_state_dict",
]


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = (lines[0].strip() if lines else "") or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class OutsideModel:
    """A classifier from outside: ``logits = module(x)``; features = input of ``head``.

    ``head`` is a copy of the last linear layer (``(C, D)`` weight, bias), the one the
    post-hoc variants recalibrate. ``batch``: the fixed batch size of an exported
    program without a dynamic batch dimension (inputs are padded to it), else None.
    """

    def __init__(
        self,
        run: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        head: nn.Linear,
        head_name: str,
        *,
        input_shape: tuple[int, ...] | None = None,
        batch: int | None = None,
        module: nn.Module | None = None,
    ) -> None:
        self._run = run
        self.head = head
        self.head_name = head_name
        self.input_shape = input_shape  # (C, H, W) if the program fixes it
        self.batch = batch
        self.module = module
        self.head_is_output: bool | None = None  # known after the first batch

    @property
    def num_classes(self) -> int:
        return int(self.head.out_features)

    def outputs(
        self, x: torch.Tensor, *, batch_size: int = 256, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        """``logits (N, C)`` and features ``(N, D)``, float32, of inputs ``x (N, c, s, s)``."""
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise InputError(
                f"the model takes inputs of shape {self.input_shape} but the preprocessing "
                f"gives {tuple(x.shape[1:])}; set preprocess.channels and preprocess.size "
                "to what the model was trained on"
            )
        step = self.batch or batch_size
        if self.module is not None:
            self.module.to(device)
        logits, feats = [], []
        with torch.inference_mode():
            for i in range(0, len(x), step):
                xb = x[i : i + step].to(device)
                n = len(xb)
                if self.batch and n < self.batch:  # a program fixed to one batch size
                    xb = torch.cat([xb, xb.new_zeros((self.batch - n, *xb.shape[1:]))])
                try:
                    out, feat = self._run(xb)
                except (RuntimeError, AssertionError, ValueError, TypeError, IndexError) as exc:
                    raise InputError(
                        f"the model fails on inputs of shape {tuple(xb.shape[1:])} "
                        f"({_reason(exc)}); set preprocess.channels and preprocess.size to "
                        "what the model was trained on"
                    ) from None
                out, feat = out[:n].float().cpu(), feat[:n].float().cpu()
                self._check(out, feat)
                logits.append(out)
                feats.append(feat)
        if not logits:
            raise InputError("cannot compute outputs of an empty set of inputs")
        return torch.cat(logits).numpy(), torch.cat(feats).numpy()

    def _check(self, out: torch.Tensor, feat: torch.Tensor) -> None:
        if out.ndim != 2:
            raise InputError(
                f"the model returns shape {tuple(out.shape)}; a classifier must return "
                "logits (N, C)"
            )
        if feat.ndim != 2:
            raise InputError(
                f"the input of layer {self.head_name!r} has shape {tuple(feat.shape)}, not "
                "(N, D); name the classifier's final linear layer with last_layer"
            )
        if self.head_is_output is None:
            with torch.inference_mode():
                again = self.head.to(feat.device)(feat)
            self.head_is_output = again.shape == out.shape and bool(
                torch.allclose(again, out, rtol=1e-4, atol=1e-4)
            )
            if not self.head_is_output:
                log.warning(
                    "the model's output is not the output of its layer %r; the last-layer "
                    "variants (laplace) cannot run on it",
                    self.head_name,
                )


def _linear_copy(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight.detach().float())
        if bias is None:
            head.bias.zero_()
        else:
            head.bias.copy_(bias.detach().float())
    return head.eval()


def find_last_linear(module: nn.Module, name: str | None = None) -> tuple[str, nn.Linear]:
    """The module's final ``nn.Linear`` (in registration order), or the one named ``name``."""
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if name is not None:
        found = dict(linears)
        if name not in found:
            known = ", ".join(n for n, _ in linears) or "none"
            raise InputError(
                f"last_layer: the model has no linear layer named {name!r} (linear layers: "
                f"{known}); name one of them"
            )
        return name, found[name]
    if not linears:
        raise InputError(
            "the model has no nn.Linear layer; the last-layer variants need one (a "
            "classifier head), or name it with last_layer"
        )
    return linears[-1]


def import_factory(spec: str) -> Callable[..., nn.Module]:
    """``"package.module:function"`` -> the function (importing the module)."""
    mod, _, attr = spec.partition(":")
    if not mod or not attr:
        raise InputError(f"factory must be 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(mod)
    except ImportError as exc:
        raise InputError(
            f"factory {spec!r}: cannot import {mod!r} ({_reason(exc)}); put its folder on "
            "PYTHONPATH or install the package"
        ) from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise InputError(f"factory {spec!r}: {mod!r} has no attribute {attr!r}")
    if not callable(fn):
        raise InputError(f"factory {spec!r} is not callable")
    return fn  # type: ignore[return-value]


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """A state dict saved with ``torch.save(model.state_dict(), path)`` (or a dict holding
    it under ``state_dict`` / ``model``), read with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist; check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refusing to load: the file holds pickled objects other than weights "
            "(it could run code); save model.state_dict() instead of the model"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch signals damage with many types
        raise CheckpointError(f"{path}: cannot read weights ({_reason(exc)})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: not a state dict (name -> tensor); save it with "
            "torch.save(model.state_dict(), path)"
        )
    return state


def _mismatch(model: nn.Module, saved: dict[str, torch.Tensor]) -> str:
    want = model.state_dict()
    missing = [k for k in want if k not in saved]
    extra = [k for k in saved if k not in want]
    shaped = [k for k in want if k in saved and saved[k].shape != want[k].shape]
    parts = [
        f"{len(v)} {what} (e.g. {v[0]})"
        for v, what in ((missing, "missing"), (extra, "unexpected"), (shaped, "of another shape"))
        if v
    ]
    return ", ".join(parts) or "incompatible tensors"


def build_factory_model(factory: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """A fresh model from ``factory(**kwargs)``."""
    try:
        model = import_factory(factory)(**(kwargs or {}))
    except InputError:
        raise
    except TypeError as exc:
        raise InputError(f"factory {factory!r}: {_reason(exc)}; check factory_args") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"factory {factory!r} returned {type(model).__name__}, not a nn.Module")
    return model


def factory_code(factory: str, kwargs: dict[str, Any] | None = None) -> str:
    """SHA-256 of the code that defines the model ``factory(**kwargs)`` builds: the source
    files of the factory's module, of the modules of the classes and functions it imports,
    and of every module that defines one of the model's layers (torch's own left out), as
    they are on disk now.

    A model is kept across runs by its fingerprint; its factory's name alone does not tell
    an edited ``nn.ReLU`` -> ``nn.Tanh`` apart. The model is built on the meta device
    (no memory, no random numbers), or normally if the factory cannot build it there.
    Code reached only through other modules' helpers is not seen.
    """
    fn = import_factory(factory)
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                model = fn(**(kwargs or {}))
        except Exception:  # noqa: BLE001 - any factory code may fail on the meta device
            model = build_factory_model(factory, kwargs)
    home = factory.partition(":")[0]
    names = {home, getattr(fn, "__module__", None)}
    # a factory often builds its model from blocks it imports from modules of its own
    names |= {
        getattr(v, "__module__", None)
        for v in vars(sys.modules[home]).values()
        if isinstance(v, (type, types.FunctionType))
    }
    if isinstance(model, nn.Module):
        names |= {type(m).__module__ for m in model.modules()}
    digest = hashlib.sha256()
    for name in sorted(n for n in names if n and n != "torch" and not n.startswith("torch.")):
        digest.update(f"{name}\0".encode() + _module_source(name) + b"\0")
    return digest.hexdigest()


#: each module's source as first hashed in this process, while that module object lives
_FIRST_SEEN: weakref.WeakKeyDictionary[types.ModuleType, bytes] = weakref.WeakKeyDictionary()


def _module_source(name: str) -> bytes:
    """A module's source file; for a compiled module, its file's size and time.

    A file edited after it was imported here would be hashed as the new code while the
    model is built from the old: that is refused instead."""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if module is None or not file or not Path(file).is_file():
        return b""
    path = Path(file)
    if path.suffix == ".py":
        source = path.read_bytes()
    else:
        source = f"{path.stat().st_size} {path.stat().st_mtime_ns}".encode()
    digest = hashlib.sha256(source).digest()
    if _FIRST_SEEN.setdefault(module, digest) != digest:
        raise InputError(
            f"{path} changed after this Python process imported it, so the model would be "
            "built from the old code; start Python again (or importlib.reload the module)"
        )
    return source


def wrap_module(model: nn.Module, *, last_layer: str | None = None) -> OutsideModel:
    """An ``nn.Module`` as an :class:`OutsideModel` (features by a hook on its last linear)."""
    name, linear = find_last_linear(model, last_layer)
    model.eval()
    seen: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        seen["features"] = args[0]

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        handle = linear.register_forward_hook(hook)
        try:
            out = model(x)
        finally:
            handle.remove()
        if "features" not in seen:
            raise InputError(f"layer {name!r} did not run in the model's forward pass")
        return out, seen.pop("features")

    return OutsideModel(run, _linear_copy(linear.weight, linear.bias), name, module=model)


def load_factory_model(
    factory: str,
    weights: Path | str,
    *,
    kwargs: dict[str, Any] | None = None,
    last_layer: str | None = None,
) -> OutsideModel:
    """``factory(**kwargs)`` with the state dict at ``weights`` loaded (strictly)."""
    model = build_factory_model(factory, kwargs)
    state = read_state_dict(weights)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise CheckpointError(
            f"{weights}: the state dict does not fit the model of {factory!r} "
            f"({_mismatch(model, state)}); give the weights saved from this model, or "
            "the factory_args it was built with"
        ) from None
    return wrap_module(model, last_layer=last_layer)


#: constant files of a .pt2 archive that hold plain tensors (others are unpickled on load)
_TENSOR_CONSTANT_PREFIX = "tensor_"


def check_export_archive(path: Path) -> None:
    """Refuse a ``.pt2`` whose weights or constants ``torch.export.load`` would unpickle."""
    fix = "export the model again with torch.export.save (tensors only, no custom objects)"
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a torch.export archive (.pt2); {fix}")
    with zipfile.ZipFile(path) as z:
        configs = [
            n
            for n in z.namelist()
            if n.endswith(("_weights_config.json", "_constants_config.json"))
        ]
        if not configs:
            raise CheckpointError(
                f"{path}: no weights index in the archive (an older or other format); {fix}"
            )
        for name in configs:
            try:
                entries = json.loads(z.read(name)).get("config", {})
            except (ValueError, AttributeError):
                raise CheckpointError(f"{path}: damaged archive index {name}; {fix}") from None
            for key, meta in entries.items():
                constant = name.endswith("_constants_config.json")
                pickled = bool(meta.get("use_pickle")) or (
                    constant
                    and not str(meta.get("path_name", "")).startswith(_TENSOR_CONSTANT_PREFIX)
                )
                if pickled:
                    raise CheckpointError(
                        f"{path}: refusing to load: {key!r} is stored as a pickled object "
                        f"(it could run code); {fix}"
                    )


def load_exported(path: Path | str, *, last_layer: str | None = None) -> OutsideModel:
    """A ``torch.export`` program saved with ``torch.export.save``, wrapped as
    :class:`OutsideModel`. Its last ``aten.linear`` call (or the one of module
    ``last_layer``) is the head; its input shape fixes the expected ``(C, H, W)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist; check the path")
    if path.suffix != ".pt2":
        raise CheckpointError(
            f"{path}: a model file must be a torch.export program (.pt2); for a state dict "
            "give factory and weights (TorchScript files are not accepted)"
        )
    check_export_archive(path)
    try:
        program = torch.export.load(str(path))
        gm = program.module()
    except Exception as exc:  # noqa: BLE001 - torch signals damage with many types
        raise CheckpointError(f"{path}: cannot load the program ({_reason(exc)})") from None
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise InputError(
            f"{path}: the program takes {len(placeholders)} inputs; a classifier takes one"
        )
    example = placeholders[0].meta.get("val")
    shape = tuple(getattr(example, "shape", ()))
    batch = shape[0] if shape and isinstance(shape[0], int) else None
    fixed = tuple(int(s) for s in shape[1:]) if all(isinstance(s, int) for s in shape[1:]) else None
    linears = [
        n
        for n in gm.graph.nodes
        if n.op == "call_function" and n.target in (torch.ops.aten.linear.default,)
    ]

    def module_of(node: torch.fx.Node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        return str(list(stack.values())[-1][0]) if stack else ""

    if last_layer is not None:
        named = [n for n in linears if module_of(n) == last_layer]
        if not named:
            known = ", ".join(module_of(n) for n in linears) or "none"
            raise InputError(
                f"last_layer: the program has no linear layer {last_layer!r} (linear layers: "
                f"{known}); name one of them"
            )
        node = named[-1]
    elif linears:
        node = linears[-1]
    else:
        raise InputError(f"{path}: the program has no linear layer; the variants need a head")

    def param(arg: Any) -> torch.Tensor | None:
        if arg is None:
            return None
        if arg.op != "get_attr":
            raise InputError(f"{path}: the weights of the last linear layer are not constants")
        obj: Any = gm
        for part in str(arg.target).split("."):
            obj = getattr(obj, part)
        return obj

    args = list(node.args) + [None] * (3 - len(node.args))
    head = _linear_copy(param(args[1]), param(args[2]))
    feature_node = args[0]

    class _Capture(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            value = super().run_node(n)
            if n is feature_node:
                self.features = value
            return value

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        interp = _Capture(gm)
        out = interp.run(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out, interp.features

    return OutsideModel(
        run, head, module_of(node) or "linear", input_shape=fixed, batch=batch, module=gm
    )
