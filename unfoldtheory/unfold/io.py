"""Saving and loading models: a state dict plus a JSON config, in one file, never unpickling code.

The file is written by ``torch.save`` (atomically) as a plain dictionary of tensors and strings::

    {"format": "unfoldtheory-model", "version": 1, "config": "<JSON>", "state_dict": {...}}

and read back with ``torch.load(..., weights_only=True)``, which refuses any pickled code. A file
that is not such a dictionary, names an unknown model class, or whose tensors do not fit the
model, or hold NaN or ±inf, raises :class:`CheckpointError` saying which. A file that is not a torch
file at all (empty, text, a zip archive without torch's ``data.pkl``, other bytes) is recognised
before anything is unpickled, and the error says what it is.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch

from unfoldtheory.diagnostics.files import atomic_write_bytes
from unfoldtheory.unfold.finite import check_finite_parameters

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


def save(model: torch.nn.Module, path: str | os.PathLike[str], *, example_input: Any = None) -> Path:
    """Write ``model`` to ``path`` atomically.

    A model of this package is written as its config + state dict (on the CPU). Any other module is written as a
    ``torch.export`` program traced at ``example_input`` (a tensor with a leading batch dimension), the ``.pt2``
    archive that :func:`unfoldtheory.program_io.load_program` checks and ``unfoldtheory analyze`` reads.
    """
    if type(model).__name__ not in _registry():
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"save() takes a torch module, got {type(model).__name__}")
        if example_input is None:
            raise TypeError(f"save() writes {type(model).__name__}, a module of your own, as a torch.export program: "
                            "pass example_input=<a (batch, m) tensor> (or call torch.export.save(torch.export.export("
                            "model, (y,)), 'model.pt2') yourself)")
        return _save_program(model, path, example_input)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": json.dumps(model.config()),
               "dtype": _dtype_of(model), "state_dict": state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _save_program(model: torch.nn.Module, path: str | os.PathLike[str], example_input: Any) -> Path:
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch tensor, got {type(example_input).__name__}")
    check_finite_parameters(model)
    buf = io.BytesIO()
    torch.export.save(torch.export.export(model, (example_input,)), buf)
    from unfoldtheory.program_io import check_program_bytes

    check_program_bytes(buf.getvalue(), str(path))  # what we write must pass the loader's checks
    return atomic_write_bytes(path, buf.getvalue())


_ZIP_MAGIC = b"PK\x03\x04"
_SHOWN = 40  # characters or bytes of a foreign file quoted in the error
_PICKLE_SAMPLE = 1 << 16  # a text-protocol pickle must reach its STOP within this many bytes to be tried as one


def _is_pickle(sample: bytes) -> bool:
    """A binary pickle (protocol 2 to 5: torch's legacy format too), or a stream whose start parses as
    one up to its STOP opcode (protocols 0 and 1); :mod:`pickletools` only reads opcodes and runs nothing."""
    if sample[:1] == b"\x80" and sample[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True
    try:
        for _ in pickletools.genops(sample[:_PICKLE_SAMPLE]):
            pass
    except Exception:  # any parse failure (or no STOP within the sample) means "not a pickle"
        return False
    return True


def _as_text(head: bytes) -> str | None:
    """The start of ``head`` decoded, when it reads as UTF-8 text (a cut-off last character allowed)."""
    if b"\x00" in head:
        return None
    for cut in range(4):  # a multi-byte character may be cut at the end of the sample
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return text if all(c.isprintable() or c in "\t\n\r\f\v" for c in text) else None
    return None


def describe_non_zip(sample: bytes) -> str | None:
    """What a file is, in words, from its first bytes ``sample`` (at least 512 of them, or the whole file), when it
    is not a zip archive ("the file is empty", "it is a pickle ...", "it is a text file (starts with ...)", ...);
    None for a zip archive. Reads opcodes only, never unpickles."""
    if not sample:
        return "the file is empty"
    if sample.startswith(_ZIP_MAGIC):
        return None
    if _is_pickle(sample):
        return "it is a pickle (torch's legacy format or any Python object), not a zip archive"
    text = _as_text(sample[:512])
    if text is not None:
        return f"it is a text file (starts with {text[:_SHOWN]!r})"
    return f"it is neither a zip archive (torch's format) nor a pickle (first bytes: {sample[:16].hex(' ')})"


def _foreign(path: Path) -> str | None:
    """Why the file cannot be a torch checkpoint, saying what it is (None: it may be one: a zip with
    torch's ``data.pkl``, or a pickle); read without unpickling anything."""
    with path.open("rb") as fh:
        sample = fh.read(_PICKLE_SAMPLE)
    if sample.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            return f"a corrupt or truncated zip archive, not loadable ({exc})"
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            return None
        if any(name.count("/") == 1 and name.endswith("/archive_format") for name in names):
            return ("not a torch checkpoint: it is a torch.export program (.pt2); load it with "
                    "unfoldtheory.program_io.load_program (unfoldtheory analyze reads both)")
        shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
        return (f"not a torch checkpoint: it is a zip archive without torch's data.pkl "
                f"(it holds {len(names)} entries: {shown or 'none'})")
    if sample and _is_pickle(sample):
        return None
    return f"not a torch checkpoint: {describe_non_zip(sample)}"


def _torch_reason(exc: Exception) -> str:
    """The line of torch's weights-only refusal that says what was refused (its other lines are boilerplate)."""
    boiler = ("Weights only load failed", "Please file an issue", "Check the documentation", "WeightsUnpickler error:")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(boiler) and "weights_only" not in ln]
    return f" (torch: {useful[0]})" if useful else ""


def load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Read a model written by :func:`save`; untrusted or foreign files raise CheckpointError.

    A model whose parameters or buffers hold NaN or ±inf is refused, naming the tensor
    (:func:`~unfoldtheory.unfold.finite.check_finite_parameters`).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    what = _foreign(path)
    if what is not None:
        raise CheckpointError(f"{path}: {what}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused: the file holds pickled objects other than tensors and plain data "
                              f"(possibly code); unfoldtheory loads checkpoints with weights_only=True only"
                              f"{_torch_reason(exc)}") from None
    except Exception as exc:  # torch's readers raise many types (KeyError, struct.error, ...) on bad bytes
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
    try:
        check_finite_parameters(model)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return model
