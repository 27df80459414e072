"""Presets, YAML files and ``--set`` overrides into a :class:`~mistrust.config.Config`."""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mistrust.config.sections import Config
from mistrust.config.validation import validate
from mistrust.errors import ConfigError

log = logging.getLogger("mistrust.config")


def preset_names() -> list[str]:
    files = resources.files("mistrust") / "presets"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if where is not None:
            what += f" at line {where.line + 1}, column {where.column + 1}"
        raise ConfigError(f"{origin}: not valid YAML ({what})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    return data


def load_preset_dict(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}")
    text = (resources.files("mistrust") / "presets" / f"{name}.yaml").read_text()
    return _read_yaml(text, f"preset {name}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-2" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {hint}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = prefix.rstrip(".") or "config"
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s} in {where}; known keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name in names & set(data):
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            if not isinstance(data[name], dict):
                raise ConfigError(f"{key}: expected a mapping")
            kwargs[name] = _build(hint, data[name], key + ".")
        else:
            kwargs[name] = _coerce(data[name], hint, key)
    return cls(**kwargs)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``"train.epochs=5"`` -> ``{"train": {"epochs": 5}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


#: keys that moved out of ``reference`` (they now cover every model of a study)
MOVED_REFERENCE_KEYS = ("executor", "ray_address")


def _fold_reference_executor(data: dict[str, Any]) -> dict[str, Any]:
    """Accept ``reference.executor`` / ``reference.ray_address`` (older configs) as the
    top-level keys, with a warning; a conflicting top-level value is an error."""
    ref = data.get("reference")
    if not isinstance(ref, dict) or not any(k in ref for k in MOVED_REFERENCE_KEYS):
        return data
    data, ref = dict(data), dict(ref)
    for key in MOVED_REFERENCE_KEYS:
        if key not in ref:
            continue
        value = ref.pop(key)
        if key in data and data[key] != value:
            raise ConfigError(
                f"reference.{key} ({value!r}) conflicts with the top-level {key} "
                f"({data[key]!r}); set only the top-level {key} (reference.{key} is deprecated)"
            )
        data[key] = value
        log.warning(
            "config: reference.%s is deprecated; write '%s: %s' at the top level "
            "(it now covers every model of the study)",
            key,
            key,
            value,
        )
    data["reference"] = ref
    return data


def from_dict(data: dict[str, Any]) -> Config:
    cfg = _build(Config, _fold_reference_executor(data), "")
    validate(cfg)
    expand_variant_names(cfg)
    return cfg


def expand_variant_names(cfg: Config) -> None:
    """Replace every variant family of ``variants.names`` by its members (``dp-sgd`` ->
    ``dp-sgd-eps1``, ``dp-sgd-eps8``), once and for every later stage; the expanded
    names are checked again."""
    from mistrust.calibration.variants import expand_names

    names = expand_names(cfg.variants.names, cfg.variants)
    if names != cfg.variants.names:
        cfg.variants.names = names
        validate(cfg)


def load_config(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a config from a preset name or a YAML path, then apply overrides."""
    source = source or "default"
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file {source} not found")
        data = _read_yaml(path.read_text(), str(path))
        if "preset" in data:
            base = load_preset_dict(str(data.pop("preset")))
            data = _merge(base, data)
    else:
        data = load_preset_dict(source)
    for text in overrides:
        data = _merge(data, parse_override(text))
    return from_dict(data)


def save_config(cfg: Config, path: Path) -> None:
    from mistrust.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
