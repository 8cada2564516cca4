"""Getting a graph: a float64 ``torch.export`` program of a module (or a given program), its inputs and names.

A module is traced as a float64 deep copy in eval mode with ``torch.export.export(copy, (example,))``. Input
validation of the kind ``if not torch.isfinite(y).all(): raise`` is data-dependent control flow, which
``torch.export`` refuses; then the module is traced again with ``torch.export.draft_export``, which follows the
example's branch, and the trace is accepted only if every value-dependent branch depends on the input through
finiteness tests alone (``isfinite``/``isnan``/``isinf``, ``all``/``any``, comparisons of those): such a branch
is the same for every finite input, and a spec describes finite inputs only.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import re
import warnings
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

import unfoldtheory.unfold.soft_threshold  # noqa: F401  (registers unfoldtheory::soft_threshold for loaded programs)
from unfoldtheory.spec import NotRepresentable

_TORCH_DIR = os.path.dirname(torch.__file__)
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in ([^\n]*)\n[ \t]*([^\n]*)')
_FINITENESS_OPS = {"isfinite", "isnan", "isinf", "isposinf", "isneginf", "all", "any", "ne", "eq", "logical_not",
                   "logical_and", "logical_or", "bitwise_not", "item", "_local_scalar_dense", "to", "_to_copy"}
_LOGGERS = ("torch.export", "torch._export", "torch.fx.experimental.symbolic_shapes", "torch._dynamo",
            "torch._functorch", "torch._subclasses")


@dataclass(frozen=True)
class Graph:
    """A program to trace and what the tracer needs to know about it."""

    program: ExportedProgram
    example: torch.Tensor  # float64, with the batch dimension first
    input_name: str  # the placeholder of the user input
    output_index: int  # position of the user output among the graph's outputs
    names: dict[str, str]  # parameter placeholder -> canonical parameter name
    values: dict[str, torch.Tensor]  # parameter / buffer / constant placeholder -> float64 value
    parameters: dict[str, torch.Tensor]  # canonical name -> the user's tensor, in module.parameters() order
    method: str  # "torch.export.export", "torch.export.draft_export" or "given program"
    name: str


def op_name(target: Any) -> str:
    """``aten.sin.default`` for an op overload, the qualified name for anything else."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    return getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or str(target)


def _module(node: fx.Node) -> str:
    """``module `physics` (Phys)`` for the innermost module whose forward call made the node, or ''."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path, kind = list(stack.values())[-1]
    cls = str(getattr(kind, "__qualname__", kind)).rsplit(".", 1)[-1]
    return f"in module `{path}` ({cls})" if path else f"in the top module ({cls})"


def source_line(node: fx.Node) -> str:
    """``file.py:12 (`code`; ...)``: the innermost frame outside torch of the node's stack trace, or ''.

    torch.export keeps only the frames of functions named ``forward`` (module forwards) in a node's stack trace, so
    the line names a helper's call site, not the op, when the op is in a helper called from a forward; say which."""
    frames = _FRAME.findall(node.meta.get("stack_trace") or "")
    if not frames:
        return ""
    user = [i for i, f in enumerate(frames) if not os.path.abspath(f[0]).startswith(_TORCH_DIR)]
    i = user[-1] if user else len(frames) - 1
    path, line, func, code = frames[i]
    if func.strip() != "forward":
        note = f"in `{func.strip()}`"
    elif i < len(frames) - 1:
        note = "innermost user `forward` frame, calling into torch"
    else:
        note = "innermost `forward` frame: the op is on this line or in a function it calls"
    return f"{os.path.basename(path)}:{line} (`{code.strip()}`; {note})"


def describe(node: fx.Node) -> str:
    """The op, the module that runs it and where the user's code calls it, for messages, e.g.
    ``aten.sin.default (`sin`) in module `physics` (Phys) at model.py:12 (`return torch.sin(x)`; ...)``."""
    fn = node.meta.get("torch_fn")
    called = f" (`{str(fn[1]).rsplit('.', 1)[-1]}`)" if isinstance(fn, tuple) and len(fn) == 2 else ""
    module, where = _module(node), source_line(node)
    text = op_name(node.target) + called + (f" {module}" if module else "")
    return f"{text} at {where}" if where else f"{text} (node {node.name})"


@contextmanager
def _quiet() -> Any:
    """Silence torch.export's logs and its print of a partial graph on failure (we raise our own message)."""
    saved = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _check_example(example: Any) -> torch.Tensor:
    if not isinstance(example, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, got {type(example).__name__}")
    if example.ndim < 1 or example.shape[0] < 1 or example.numel() == 0:
        raise ValueError(f"example_input has shape {tuple(example.shape)}; expected (batch, ...) with batch >= 1 "
                         "and at least one entry per sample")
    if not example.is_floating_point():
        raise ValueError(f"example_input has dtype {example.dtype}; expected a floating-point tensor")
    if not bool(torch.isfinite(example).all()):
        raise ValueError("example_input has non-finite entries")
    return example.detach().to(device="cpu", dtype=torch.float64).clone()


def _export(module: nn.Module, example: torch.Tensor) -> tuple[ExportedProgram, str]:
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    try:
        with _quiet():
            return torch.export.export(module, (example,)), "torch.export.export"
    except GuardOnDataDependentSymNode as exc:
        frames = _FRAME.findall(str(exc).split("The following call raised this error:")[-1])
        branch = f" at {os.path.basename(frames[0][0])}:{frames[0][1]} (`{frames[0][3].strip()}`)" if frames else ""
    except Exception as exc:  # torch.export's errors have many types; all mean "cannot trace"
        raise NotRepresentable(f"torch.export could not trace the module: {type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    try:
        with _quiet():
            program = torch.export.draft_export(module, (example,))
    except Exception as exc:
        raise NotRepresentable(f"torch.export could not trace the module: its control flow depends on the input's "
                               f"values{branch}, and tracing along the example's branch failed: {type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0]}") from exc
    return program, "torch.export.draft_export"


def check_value_branches(program: ExportedProgram) -> None:
    """Refuse a draft export whose value-dependent branches look at the input beyond finiteness tests.

    Called after the graph was traced, so that a graph with an op no spec represents is refused by that op."""
    graph = program.graph
    user = {s.arg.name for s in program.graph_signature.input_specs if s.kind == InputKind.USER_INPUT}
    depends: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "placeholder" and node.name in user:
            depends.add(node)
        elif any(a in depends for a in node.all_input_nodes):
            depends.add(node)
    for node in graph.nodes:
        if node.op != "call_function" or not str(node.target).startswith(("aten.item", "aten._local_scalar_dense")):
            continue
        stack, seen = [node], set()
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            seen.add(cur)
            if cur.op == "call_function" and cur in depends:
                packet = getattr(cur.target, "_opname", getattr(cur.target, "__name__", ""))
                if packet not in _FINITENESS_OPS:
                    raise NotRepresentable(f"{describe(cur)}: the module's control flow depends on the input's values "
                                           "(beyond a finiteness check), so no single network describes it")
            stack.extend(cur.all_input_nodes)


def _mutates(program: ExportedProgram) -> bool:
    """Whether the graph has in-place ops (``z[:, :3] = x``); ``run_decompositions({})`` makes it functional."""
    return any(n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload) and n.target._schema.is_mutable
               for n in program.graph.nodes)


def _canonical_names(module: nn.Module) -> dict[str, str]:
    """Every name of a parameter (tied parameters have several) -> its first name in ``module.parameters()``."""
    first: dict[int, str] = {}
    names: dict[str, str] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names[name] = first.setdefault(id(p), name)
    return names


def _float64(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    return t.to(torch.float64) if t.is_floating_point() else t


def graph_of(module_or_program: Any, example_input: Any, name: str | None) -> Graph:
    """Export a module (float64 copy, eval mode) or take a program, and collect what the tracer needs."""
    if isinstance(module_or_program, ExportedProgram):
        program = module_or_program
        example = _program_example(program, example_input)
        parameters = {n: program.state_dict[n] for n in program.graph_signature.parameters}
        canonical = {n: n for n in parameters}
        method, default_name = "given program", "traced program"
    elif isinstance(module_or_program, nn.Module):
        if example_input is None:
            raise ValueError("from_torch(module) needs example_input, a tensor of shape (batch, ...)")
        example = _check_example(example_input)
        canonical = _canonical_names(module_or_program)
        parameters = dict(module_or_program.named_parameters())
        try:
            work = copy.deepcopy(module_or_program).to(torch.float64).eval()
        except Exception as exc:
            raise ValueError(f"cannot make a float64 copy of the module to trace: {type(exc).__name__}: {exc}") from exc
        program, method = _export(work, example)
        default_name = type(module_or_program).__name__
    else:
        raise TypeError(f"from_torch takes an nn.Module or a torch.export.ExportedProgram, got "
                        f"{type(module_or_program).__name__}")
    if _mutates(program):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch-internal deprecation notices
                program = program.run_decompositions({})
        except Exception as exc:
            raise NotRepresentable(f"the program mutates tensors in place and could not be made functional: "
                                   f"{type(exc).__name__}: {exc}") from exc
    sig = program.graph_signature
    users = [s for s in sig.input_specs if s.kind == InputKind.USER_INPUT]
    if len(users) != 1:
        raise NotRepresentable(f"the program has {len(users)} user inputs; from_torch traces a map of one tensor")
    names: dict[str, str] = {}
    values: dict[str, torch.Tensor] = {}
    for spec in sig.input_specs:
        if spec.kind == InputKind.PARAMETER:
            names[spec.arg.name] = canonical.get(spec.target, spec.target)
            values[spec.arg.name] = _float64(program.state_dict[spec.target])
        elif spec.kind in (InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            source = program.state_dict if spec.target in program.state_dict else program.constants
            values[spec.arg.name] = _float64(source[spec.target])
        elif spec.kind != InputKind.USER_INPUT:
            raise NotRepresentable(f"the program has an input of kind {spec.kind.name} ({spec.arg.name}); "
                                   "from_torch traces parameters, buffers and constants only")
    outs = [i for i, s in enumerate(sig.output_specs) if s.kind == OutputKind.USER_OUTPUT]
    if len(outs) != 1 or len(outs) != len(sig.output_specs):
        raise NotRepresentable(f"the program has outputs {[s.kind.name for s in sig.output_specs]}; from_torch "
                               "traces a module with one tensor output and no state mutation")
    return Graph(program, example, users[0].arg.name, outs[0], names, values, parameters, method,
                 name if name is not None else default_name)


def _program_example(program: ExportedProgram, example_input: Any) -> torch.Tensor:
    users = [s for s in program.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    node = next((n for n in program.graph.nodes if n.op == "placeholder" and users and n.name == users[0].arg.name), None)
    val = None if node is None else node.meta.get("val")
    static = val is not None and all(isinstance(s, int) for s in val.shape)
    if example_input is not None:
        example = _check_example(example_input)
        if static and tuple(example.shape) != tuple(val.shape):
            raise ValueError(f"example_input has shape {tuple(example.shape)}; the program was exported for input "
                             f"shape {tuple(val.shape)}")
        return example
    if not static:
        raise ValueError("the program's input shape is dynamic; pass example_input, a tensor of shape (batch, ...)")
    if len(val.shape) < 1 or math.prod(val.shape) == 0:
        raise ValueError(f"the program's input has shape {tuple(val.shape)}; expected (batch, ...) with entries")
    return torch.randn(tuple(val.shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
