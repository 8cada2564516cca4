"""Affine forms of traced tensors in the network's states: ``X = Σ_j C_j z_j + c``, one sample at a time.

A traced tensor has a full shape ``S`` with a batch dimension of size ``B`` at position ``bdim`` (``B`` is the
example's batch size; with ``B = 1`` the position does not matter). Its *per-sample* elements are those of one
batch entry in C order; ``C_j`` has one row per per-sample element and one column per coordinate of state
``z_j``. Three exact constructions move forms through the graph:

* :func:`gather`: an op that only moves elements (view, permute, select, expand, cat, ...) is applied to an index
  tensor, which says where every output element comes from; rows are picked accordingly. It also finds the
  output's batch dimension and refuses ops that mix samples.
* :func:`linear_map`: an op that is linear in the form (matmul, conv, sum) is applied to the columns of each
  ``C_j`` (``torch.func.vmap``) with the batch dimension set to 1, and to ``c``.
* :func:`per_sample_constant`: a constant operand broadcast to the full shape must agree across samples; its
  per-sample part is what multiplies or adds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.provenance import Provenance

DTYPE = torch.float64


@dataclass
class Affine:
    """``Σ_j terms[j] z_j + offset`` for every sample of a tensor of full shape ``shape``."""

    shape: tuple[int, ...]
    bdim: int | None
    batch: int
    terms: dict[int, torch.Tensor]
    offset: torch.Tensor
    term_prov: dict[int, Provenance] = field(default_factory=dict)
    offset_prov: Provenance = prov.ZERO

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self.batch == 1 or self.bdim is None:
            return self.shape
        return self.shape[: self.bdim] + self.shape[self.bdim + 1:]

    @property
    def numel(self) -> int:
        return math.prod(self.sample_shape)

    @property
    def unit_shape(self) -> tuple[int, ...]:
        """The full shape with the batch dimension set to 1 (one sample)."""
        if self.batch == 1 or self.bdim is None:
            return self.shape
        return (*self.shape[:self.bdim], 1, *self.shape[self.bdim + 1:])


def state(index: int, shape: tuple[int, ...], bdim: int | None, batch: int) -> Affine:
    """The form of state ``z_index`` itself: coefficient ``I``, offset 0."""
    a = Affine(tuple(shape), bdim, batch, {}, torch.zeros(0, dtype=DTYPE))
    n = a.numel
    a.terms = {index: torch.eye(n, dtype=DTYPE)}
    a.offset = torch.zeros(n, dtype=DTYPE)
    a.term_prov = {index: prov.constant("I")}
    return a


def unit_value(C: torch.Tensor) -> float | None:
    """``s`` if ``C`` is ``s`` times a partial permutation (at most one nonzero per row and column, all equal), else None."""
    nz = C != 0
    if not bool(nz.any()) or bool((nz.sum(0) > 1).any()) or bool((nz.sum(1) > 1).any()):
        return None
    values = C[nz]
    s = float(values[0])
    return s if bool((values == s).all()) else None


def _batch_index(shape: tuple[int, ...], bdim: int | None, batch: int) -> torch.Tensor:
    if batch == 1 or bdim is None:
        return torch.zeros(shape, dtype=torch.int64)
    view = [1] * len(shape)
    view[bdim] = batch
    return torch.arange(batch).reshape(view).expand(shape)


def _local_index(a: Affine) -> torch.Tensor:
    local = torch.arange(a.numel).reshape(a.sample_shape)
    if a.batch == 1 or a.bdim is None:
        return local
    return local.unsqueeze(a.bdim).expand(a.shape)


def find_bdim(out_b: torch.Tensor, batch: int, where: str) -> int | None:
    """The dimension along which the sample index runs 0..B−1 (None when B = 1); refuses a mix of samples."""
    if batch == 1:
        return None
    for d, size in enumerate(out_b.shape):
        if size == batch:
            view = [1] * out_b.ndim
            view[d] = batch
            if bool((out_b == torch.arange(batch).reshape(view)).all()):
                return d
    raise NotRepresentable(f"{where} mixes the samples of the batch (no batch dimension survives it); "
                           "a NetworkSpec maps each sample on its own")


def gather(op: Callable[[list[torch.Tensor]], torch.Tensor | Sequence[torch.Tensor]], inputs: Sequence[Affine],
           where: str, name: str) -> Affine | list[Affine]:
    """Apply an element-moving op to the forms ``inputs`` (see the module docstring); list in, one or more out."""
    batch = inputs[0].batch
    idx, b_maps, local_maps, base, nbase = [], [], [], 0, 0
    for a in inputs:
        full = math.prod(a.shape)
        idx.append(torch.arange(base, base + full).reshape(a.shape))
        b_maps.append(_batch_index(a.shape, a.bdim, batch).reshape(-1))
        local_maps.append(_local_index(a).reshape(-1) + nbase)
        base, nbase = base + full, nbase + a.numel
    b_map, local_map = torch.cat(b_maps), torch.cat(local_maps)
    out = op(idx)
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    results = [_gathered(o, b_map, local_map, inputs, where, name) for o in outs]
    return results[0] if isinstance(out, torch.Tensor) else results


def _gathered(out: torch.Tensor, b_map: torch.Tensor, local_map: torch.Tensor, inputs: Sequence[Affine],
              where: str, name: str) -> Affine:
    batch = inputs[0].batch
    out_b, out_local = b_map[out], local_map[out]
    bdim = find_bdim(out_b, batch, where)
    if bdim is None:
        src = out_local.reshape(-1)
    else:
        per = out_local.movedim(bdim, 0).reshape(batch, -1)
        if not bool((per == per[0]).all()):
            raise NotRepresentable(f"{where} arranges the samples of the batch differently from one another")
        src = per[0]
    injective = int(torch.unique(src).numel()) == int(src.numel())
    states = sorted({j for a in inputs for j in a.terms})
    starts = [0]
    for a in inputs:
        starts.append(starts[-1] + a.numel)
    owners = [i for i in range(len(inputs)) if bool(((src >= starts[i]) & (src < starts[i + 1])).any())]
    terms, term_prov = {}, {}
    for j in states:
        d = next(a.terms[j].shape[1] for a in inputs if j in a.terms)
        table = torch.cat([a.terms.get(j, torch.zeros(a.numel, d, dtype=DTYPE)) for a in inputs])
        terms[j] = table[src]
        users = [inputs[i].term_prov[j] for i in owners if j in inputs[i].terms]
        if not users:
            continue
        term_prov[j] = prov.rearranged(users[0], name) if injective and len(users) == 1 else prov.combined(name, users)
    offset = torch.cat([a.offset for a in inputs])[src]
    offs = [inputs[i].offset_prov for i in owners if inputs[i].offset_prov is not prov.ZERO]
    if not offs:
        offset_prov = prov.ZERO
    elif injective and len(offs) == 1:
        offset_prov = prov.rearranged(offs[0], name)
    else:
        offset_prov = prov.combined(name, offs)
    terms = {j: c for j, c in terms.items() if j in term_prov}
    return Affine(tuple(out.shape), bdim, batch, terms, offset, term_prov, offset_prov)


def per_sample_constant(value: torch.Tensor, shape: tuple[int, ...], bdim: int | None, batch: int,
                        where: str) -> tuple[torch.Tensor, bool]:
    """A constant broadcast to ``shape``, as one sample's vector, and whether each entry is used at most once.

    Refuses a constant that differs between samples (it would make the map depend on the sample's position)."""
    try:
        full = torch.broadcast_to(value.to(DTYPE), shape)
    except RuntimeError as exc:
        raise NotRepresentable(f"{where}: a constant of shape {tuple(value.shape)} does not broadcast to "
                               f"{tuple(shape)} ({exc})") from None
    if batch == 1 or bdim is None:
        vec = full.reshape(-1)
    else:
        first = full.select(bdim, 0)
        if not bool((full == first.unsqueeze(bdim)).all()):
            raise NotRepresentable(f"{where}: a constant operand differs between the samples of the batch")
        vec = first.reshape(-1)
    return vec.clone(), value.numel() == vec.numel() or vec.numel() == 1


def as_affine(value: torch.Tensor, like: Affine, provenance: Provenance, where: str) -> Affine:
    """A constant tensor of ``like``'s full shape as a form with no terms (its per-sample part)."""
    vec, _ = per_sample_constant(value, like.shape, like.bdim, like.batch, where)
    return Affine(like.shape, like.bdim, like.batch, {}, vec, {}, provenance)


def linear_map(a: Affine, fn: Callable[[torch.Tensor], torch.Tensor], out_shape: tuple[int, ...], where: str,
               name: str, weight: Provenance | None,
               counts: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None,
               formed: list[str]) -> Affine:
    """Apply ``fn``, linear in its argument, to the form ``a`` (see the module docstring).

    ``weight`` is the provenance of the op's constant operand (None for a sum), ``counts(indicator)`` returns,
    for a 0/1 input pattern and an all-ones weight, the number of products in each output entry and the number of
    uses of each weight entry: a unit partial-permutation input with both counts ≤ 1 makes the output a
    rearrangement of the weight (a direct provenance stays direct). Compositions with an input that is not a
    partial permutation form float products; they are described in ``formed``.
    """
    unit = a.unit_shape
    probe = fn(torch.zeros(unit, dtype=DTYPE))
    out_unit = tuple(probe.shape)
    bdim = _out_bdim(out_unit, tuple(out_shape), a.batch, where)
    terms, term_prov = {}, {}
    for j, C in a.terms.items():
        d = C.shape[1]
        cols = C.T.reshape((d, *unit))
        mapped = torch.func.vmap(fn)(cols).reshape(d, -1).T.contiguous()
        terms[j] = mapped
        s = unit_value(C)
        if s is None:
            formed.append(f"{where}: {name} of a coefficient of state {j} that is not a selection "
                          f"({C.shape[0]}×{C.shape[1]}); the entries are float64 products, rounded")
        term_prov[j] = _mapped_prov(a.term_prov[j], C, s, weight, counts, name)
    offset = fn(a.offset.reshape(unit)).reshape(-1)
    if a.offset_prov is prov.ZERO and not bool(offset.any()):
        offset_prov = prov.ZERO
    else:
        offset_prov = prov.combined(name, [a.offset_prov] + ([weight] if weight is not None else []))
    return Affine(tuple(out_shape), bdim, a.batch, terms, offset, term_prov, offset_prov)


def _out_bdim(out_unit: tuple[int, ...], out_shape: tuple[int, ...], batch: int, where: str) -> int | None:
    if batch == 1:
        return None
    diff = [i for i, (u, f) in enumerate(zip(out_unit, out_shape, strict=False)) if u != f]
    if len(out_unit) != len(out_shape) or len(diff) != 1 or out_unit[diff[0]] != 1 or out_shape[diff[0]] != batch:
        raise NotRepresentable(f"{where} mixes the samples of the batch (one sample gives shape {out_unit}, the batch "
                               f"{out_shape}); a NetworkSpec maps each sample on its own")
    return diff[0]


def _mapped_prov(term: Provenance, C: torch.Tensor, s: float | None, weight: Provenance | None,
                 counts: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None, name: str) -> Provenance:
    if weight is None:  # a reduction: sums entries
        return prov.combined(name, [term])
    if term.kind != "constant":
        return prov.combined(name, [weight, term])
    if weight.kind == "direct" and s is not None and counts is not None:
        per_output, per_weight = counts((C != 0).to(DTYPE))
        if bool((per_output <= 1).all()) and bool((per_weight <= 1).all()):
            return prov.scaled(prov.rearranged(weight, name), s, "scale") if s != 1.0 else prov.rearranged(weight, name)
    return prov.combined(name, [weight])
