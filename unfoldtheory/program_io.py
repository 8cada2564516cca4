"""Loading a ``torch.export`` program saved as ``.pt2`` (``torch.export.save``) without running code from the file.

**Why torch's loader is not safe by itself** (torch 2.13, ``torch/export/pt2_archive/_package.py`` and
``torch/_export/serde/serialize.py``). ``torch.export.load`` warns "uses pickle under the hood … never load data from
an untrusted source", and a crafted archive can make it run code in several ways:

1. a weight or tensor constant whose payload config says ``use_pickle`` is read with
   ``torch.load(..., weights_only=False)``: a ``__reduce__`` payload runs;
2. constants named ``opaque_obj_*`` are read with ``pickle.loads``, ``custom_obj_*`` with TorchScript's unpickler
   (torchbind classes);
3. the sample inputs (and the legacy ``data/weights/<model>.pt`` state dict) go through
   ``deserialize_torch_artifact``, which retries with ``weights_only=False`` when the weights-only load fails;
4. symbolic shape expressions (``expr_str``) are parsed by ``sympy.sympify``, which calls ``eval``;
5. ``guards_code`` is Python source that ``ExportedProgram.module()`` compiles with ``exec``;
6. ``data/aotinductor/`` holds compiled shared libraries that ``load_pt2`` loads;
7. node targets are resolved by name (``torch.…``, ``math.…``, ``_operator.…``, registered extension ops), and
   ``aten::from_file`` reads a file of the host when the graph runs.

**What :func:`load_program` does instead.** It reads the file once into memory (no check-then-reload race) and
accepts only a weights-only program, checked before torch sees a byte of it:

* the zip holds one root folder and only the members of ``torch.export.save``'s layout for the single model
  ``model``: ``archive_format`` (``pt2``), ``archive_version`` (``0``), ``byteorder``, ``.data/…``,
  ``models/model.json``, ``data/sample_inputs/model.pt``, the two payload configs, raw ``data/weights/weight_<i>``
  and ``data/constants/tensor_<i>`` files, and ``extra/…`` (read as text); so no pickled custom objects (2), no
  legacy pickled state dict (3) and no compiled code (6);
* every payload config entry is raw bytes (``use_pickle`` false) with a tensor layout (1);
* the sample inputs load with ``torch.load(weights_only=True)``, so torch's own first (weights-only) attempt
  succeeds on the same bytes and its pickle fallback is never reached (3);
* the graph has no symbolic expression, range constraint, custom object or subgraph (4), no guard code (5),
  and every node target is an ``aten`` op (other than ``from_file`` and ``_print``), ``_operator.getitem`` or
  ``unfoldtheory::soft_threshold`` (7).

What remains is what ``torch.load(weights_only=True)`` does for plain tensors, JSON parsing, and torch's
deserializer building an FX graph of allowed ops from that JSON (FX sanitises node names into identifiers).
Loading runs none of the graph's ops. Anything else is refused with a :class:`~unfoldtheory.unfold.CheckpointError`
(a ValueError) naming the member, the entry or the op.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

from unfoldtheory.unfold.io import CheckpointError, describe_non_zip

#: The node targets a loadable program may call (beside every ``torch.ops.aten`` op not in :data:`DENIED_ATEN`).
ALLOWED_TARGETS = frozenset({"_operator.getitem", "torch.ops.unfoldtheory.soft_threshold.default"})
#: ``aten`` ops with effects outside their tensors: reading a host file, printing.
DENIED_ATEN = frozenset({"from_file", "_print"})
#: Keys of the program JSON that torch evaluates (sympy ``eval``) or that carry objects or subgraphs.
_SYMBOLIC = "a symbolic shape expression (torch parses it with sympy, which calls eval); export with static shapes"
_OBJECT = "a custom object (unpickled by torch)"
REFUSED_KEYS = {"as_expr": _SYMBOLIC, "expr_str": _SYMBOLIC, "as_custom_obj": _OBJECT, "custom_obj": _OBJECT,
                "custom_obj_values": _OBJECT, "as_graph": "a subgraph (a higher-order op)"}

_SAMPLE = 1 << 16  # bytes read to tell a pickle or a text file from a zip
_ATEN = re.compile(r"torch\.ops\.aten\.(\w+)\.\w+")
_MODEL = "model"
_FIXED = {"archive_format", "archive_version", "byteorder", f"models/{_MODEL}.json", f"data/sample_inputs/{_MODEL}.pt",
          f"data/weights/{_MODEL}_weights_config.json", f"data/constants/{_MODEL}_constants_config.json"}
_RAW = {"data/weights/": re.compile(r"weight_\d+"), "data/constants/": re.compile(r"tensor_\d+")}
_WHY = (("data/aotinductor/", "compiled AOTInductor code (a shared library torch would load)"),
        ("data/constants/custom_obj_", "a pickled custom object"), ("data/constants/opaque_obj_", "a pickled object"),
        (f"data/weights/{_MODEL}.pt", "a pickled state dict (torch's legacy layout)"),
        (f"data/constants/{_MODEL}.pt", "pickled constants (torch's legacy layout)"),
        ("models/", "a second program (only 'model' is read)"))


def is_program_archive(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a zip archive with a ``<root>/archive_format`` member (``torch.export.save``'s layout);
    reads only the zip directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.count("/") == 1 and name.endswith("/archive_format") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def load_model_file(path: str | os.PathLike[str]) -> Any:
    """A saved model for analysis: the ``ExportedProgram`` (:func:`load_program`) when ``path`` is a ``torch.export``
    archive, else the float64 model of an :func:`unfoldtheory.unfold.save` checkpoint (:func:`unfoldtheory.unfold.load`,
    which names what any other file is). Bad or untrusted files raise :class:`~unfoldtheory.unfold.CheckpointError`."""
    if is_program_archive(path):
        return load_program(path)
    from unfoldtheory.unfold.io import load

    return load(path).double()


def load_program(path: str | os.PathLike[str]) -> Any:
    """The ``torch.export.ExportedProgram`` saved at ``path``, loaded only after the checks of the module docstring.

    A file that is not such an archive, or holds anything beyond a weights-only program of allowed ops, raises
    :class:`~unfoldtheory.unfold.CheckpointError` ("PATH: …") saying what it is or what was refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    data = path.read_bytes()
    check_program_bytes(data, path)
    import torch

    import unfoldtheory.unfold.soft_threshold  # noqa: F401  (registers unfoldtheory::soft_threshold for the deserializer)

    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as exc:  # torch's deserializer raises many types on a damaged but well-formed archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a loadable torch.export program ({type(exc).__name__}: {first})") from None
    for kind, tensors in (("parameter or buffer", program.state_dict), ("constant", program.constants)):
        for name, tensor in tensors.items():
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                flat = tensor.detach().reshape(-1)
                i = int((~torch.isfinite(flat)).nonzero()[0])
                raise CheckpointError(f"{path}: {kind} {name!r} of the program has a non-finite entry ({flat[i].item()} "
                                      f"at flat index {i})")
    return program


def is_exported_program(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.export.ExportedProgram`` (without importing torch when it is not loaded)."""
    import sys

    export = sys.modules.get("torch.export")
    return export is not None and isinstance(obj, export.ExportedProgram)


def program_name(program: Any) -> str:
    """The class name of the module a program was exported from (its root ``nn_module_stack`` entry), else
    ``"ExportedProgram"``."""
    for node in program.graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            if path == "" and isinstance(kind, str):
                return kind.rsplit(".", 1)[-1]
    return "ExportedProgram"


def program_example_input(program: Any) -> Any:
    """The program's first sample input (saved in the archive), or None when it has none."""
    example = getattr(program, "example_inputs", None)
    if example is None:
        return None
    args, _ = example
    return args[0] if args else None


def check_program_bytes(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> None:
    """Raise :class:`~unfoldtheory.unfold.CheckpointError` unless ``data`` is a weights-only ``torch.export`` program
    of allowed ops (module docstring); unpickles nothing but plain tensors (``weights_only=True``)."""
    where = f"{path}: "
    what = describe_non_zip(data[:_SAMPLE])
    if what is not None:
        raise CheckpointError(f"{where}not a torch.export program: {what}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{where}a corrupt or truncated zip archive, not a loadable torch.export program ({exc})") from None
    if bad is not None:
        raise CheckpointError(f"{where}a corrupt zip archive: member {bad!r} fails its CRC check")
    with archive:
        root, members = _members(archive, where)
        _check_format(archive, root, where)
        for kind in ("weights", "constants"):
            _check_payloads(archive, root, kind, members, where)
        _check_sample_inputs(archive.read(f"{root}/data/sample_inputs/{_MODEL}.pt"), where)
        _check_graph(archive.read(f"{root}/models/{_MODEL}.json"), where)


def _members(archive: zipfile.ZipFile, where: str) -> tuple[str, set[str]]:
    """The archive's root folder and its members (relative to it); a foreign layout or member is refused."""
    names = [n for n in archive.namelist() if not n.endswith("/")]
    shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise CheckpointError(f"{where}a torch.save checkpoint (it has data.pkl), not a torch.export program")
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or not any(n.count("/") == 1 and n.endswith("/archive_format") for n in names):
        raise CheckpointError(f"{where}not a torch.export program: a zip archive without torch.export's layout "
                              f"(no <root>/archive_format; it holds {len(names)} entries: {shown or 'none'})")
    root = roots.pop()
    members = {n[len(root) + 1:] for n in names}
    for name in sorted(members):
        if ".." in name.split("/") or "\\" in name or name.startswith("/"):
            raise CheckpointError(f"{where}refused: member {name!r} has an unsafe path")
        if name in _FIXED or name.startswith((".data/", "extra/")):
            continue
        folder = next((f for f in _RAW if name.startswith(f)), None)
        if folder is not None and _RAW[folder].fullmatch(name[len(folder):]):
            continue
        why = next((w for prefix, w in _WHY if name.startswith(prefix)), "not part of a weights-only torch.export program")
        raise CheckpointError(f"{where}refused: member {name!r} is {why}; unfoldtheory loads weights-only programs only")
    missing = sorted(_FIXED - members)
    if missing:
        raise CheckpointError(f"{where}not a complete torch.export program: missing {', '.join(missing)}")
    return root, members


def _check_format(archive: zipfile.ZipFile, root: str, where: str) -> None:
    fmt = archive.read(f"{root}/archive_format").decode("utf-8", "replace").strip()
    version = archive.read(f"{root}/archive_version").decode("utf-8", "replace").strip()
    if fmt != "pt2" or version != "0":
        raise CheckpointError(f"{where}archive format {fmt!r} version {version!r}; unfoldtheory reads 'pt2' version '0'")


def _json(blob: bytes, what: str, where: str) -> Any:
    try:
        return json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{where}{what} is not valid JSON ({exc})") from None


def _check_payloads(archive: zipfile.ZipFile, root: str, kind: str, members: set[str], where: str) -> None:
    """Every entry of ``data/<kind>/model_<kind>_config.json`` is a raw tensor file of the archive."""
    config_name = f"data/{kind}/{_MODEL}_{kind}_config.json"
    config = _json(archive.read(f"{root}/{config_name}"), config_name, where)
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise CheckpointError(f"{where}{config_name} has no 'config' mapping")
    folder = f"data/{kind}/"
    for fqn, meta in entries.items():
        if not isinstance(meta, dict):
            raise CheckpointError(f"{where}{config_name}: entry {fqn!r} is not a mapping")
        if meta.get("use_pickle") is not False:
            raise CheckpointError(f"{where}refused: {kind[:-1]} {fqn!r} is stored as a pickle (use_pickle), which torch "
                                  "would unpickle with weights_only=False; unfoldtheory loads raw tensors only")
        file = meta.get("path_name")
        if not isinstance(file, str) or not _RAW[folder].fullmatch(file) or folder + file not in members:
            raise CheckpointError(f"{where}{config_name}: entry {fqn!r} names {file!r}, not a raw tensor file of the archive")
        if not isinstance(meta.get("tensor_meta"), dict):
            raise CheckpointError(f"{where}{config_name}: entry {fqn!r} has no tensor layout")


def _check_sample_inputs(blob: bytes, where: str) -> None:
    """The sample inputs unpickle with ``weights_only=True`` (so torch never retries with ``weights_only=False``)."""
    import torch

    try:
        inputs = torch.load(io.BytesIO(blob), weights_only=True)
    except pickle.UnpicklingError as exc:
        line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("Unsupported")), "")
        raise CheckpointError(f"{where}refused: the sample inputs hold pickled objects other than tensors (possibly code)"
                              f"{f' (torch: {line})' if line else ''}") from None
    except Exception as exc:  # torch's readers raise many types on bad bytes
        raise CheckpointError(f"{where}the sample inputs are not a torch file ({type(exc).__name__}: {exc})") from None
    if not (isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[0], tuple) and isinstance(inputs[1], dict)):
        raise CheckpointError(f"{where}the sample inputs are not an (args, kwargs) pair")


def _check_graph(blob: bytes, where: str) -> None:
    """No guard code, range constraint or refused key anywhere; every node target allowed."""
    program = _json(blob, f"models/{_MODEL}.json", where)
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise CheckpointError(f"{where}models/{_MODEL}.json is not a serialized program (no graph_module)")
    if program.get("guards_code"):
        raise CheckpointError(f"{where}refused: the program carries guard code (Python source that torch would exec)")
    if program.get("range_constraints"):
        raise CheckpointError(f"{where}refused: the program has symbolic shapes (range constraints; torch parses them "
                              "with sympy, which calls eval); export with static shapes")
    stack: list[Any] = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key in REFUSED_KEYS and value not in (None, {}, []):
                raise CheckpointError(f"{where}refused: the program holds {REFUSED_KEYS[key]}")
        if "target" in item and "outputs" in item:
            _check_target(item["target"], item.get("name"), where)
        stack.extend(item.values())


def _check_target(target: Any, node: Any, where: str) -> None:
    if not isinstance(target, str):
        raise CheckpointError(f"{where}node {node!r} has a target that is not a name: {target!r}")
    aten = _ATEN.fullmatch(target)
    if target in ALLOWED_TARGETS or (aten is not None and aten.group(1) not in DENIED_ATEN):
        return
    raise CheckpointError(f"{where}refused: node {node!r} calls {target}, outside the allowed ops (aten ops other than "
                          f"{', '.join(sorted(DENIED_ATEN))}; _operator.getitem; unfoldtheory::soft_threshold)")
