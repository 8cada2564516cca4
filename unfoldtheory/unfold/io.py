"""Saving and loading models: a state dict plus a JSON config, in one file, never unpickling code.

The file is written by ``torch.save`` (atomically) as a plain dictionary of tensors and strings::

    {"format": "unfoldtheory-model", "version": 1, "config": "<JSON>", "state_dict": {...}}

and read back with ``torch.load(..., weights_only=True)``, which refuses any pickled code. A file
that is not such a dictionary, names an unknown model class, or whose tensors do not fit the
model, raises :class:`CheckpointError` saying which.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from unfoldtheory.diagnostics.files import atomic_write_bytes

FORMAT = "unfoldtheory-model"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is not ours, is corrupt, or does not match its model."""


def _registry() -> dict[str, type[torch.nn.Module]]:
    from unfoldtheory import unfold

    return {name: getattr(unfold, name) for name in unfold.MODEL_CLASSES}


def _dtype_of(model: torch.nn.Module) -> str:
    tensor = next(iter(model.state_dict().values()))
    return str(tensor.dtype).removeprefix("torch.")


def save(model: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (config + state dict, on the CPU) to ``path`` atomically."""
    if type(model).__name__ not in _registry():
        raise TypeError(f"save() takes an unfoldtheory model, got {type(model).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": json.dumps(model.config()),
               "dtype": _dtype_of(model), "state_dict": state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Read a model written by :func:`save`; untrusted or foreign files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: refused: the file holds pickled objects other than tensors and plain data "
                              "(possibly code); unfoldtheory loads checkpoints with weights_only=True only") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable unfoldtheory checkpoint (refused or corrupt: {first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an unfoldtheory model file (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}; this unfoldtheory reads {VERSION}")
    try:
        config = json.loads(payload["config"])
        state = payload["state_dict"]
        cls = _registry()[config.pop("class")]
        dtype = getattr(torch, payload.get("dtype", "float32"))
    except (KeyError, TypeError, json.JSONDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint ({exc!r})") from None
    return _build(cls, config, state, dtype, path)


def _build(cls: type[Any], config: dict[str, Any], state: dict[str, torch.Tensor], dtype: torch.dtype,
           path: Path) -> torch.nn.Module:
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the state dict is not a dictionary of tensors")
    A = state.get("A")
    if A is not None and "m" in config and tuple(A.shape) != (config["m"], config["n"]):
        raise CheckpointError(f"{path}: tensor 'A' has shape {tuple(A.shape)}; the config says ({config['m']}, {config['n']})")
    try:
        model = cls.from_checkpoint(config, state).to(dtype)
        model.load_state_dict(state, strict=True)
    except KeyError as exc:
        raise CheckpointError(f"{path}: checkpoint has no tensor {exc} needed by {cls.__name__}") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise CheckpointError(f"{path}: checkpoint does not fit {cls.__name__}: {detail}") from None
    return model
