"""``unfoldtheory analyze model.pt2``: a user's own module exported with ``torch.export.save`` is loaded without
running code from the file, traced and analysed; crafted archives are refused (exit 2) before torch reads them."""

import io
import json
import re
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from unfoldtheory.cli import main
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.program_io import check_program_bytes, load_program, program_name
from unfoldtheory.unfold import CheckpointError
from unfoldtheory.unfold.soft_threshold import soft_threshold

FAST = ["--time-budget", "5", "--restarts", "2", "--stability-inputs", "2", "--stability-exact-neurons", "0"]


class TiedLISTA(nn.Module):
    """A weight-tied LISTA written here (not a package class): x⁺ = ST_θ(W x + B y), initialised as ISTA."""

    def __init__(self, A: np.ndarray, layers: int, lam: float) -> None:
        super().__init__()
        L = float(np.linalg.norm(A, 2) ** 2)
        n = A.shape[1]
        self.W = nn.Parameter(torch.tensor(np.eye(n) - A.T @ A / L))
        self.B = nn.Parameter(torch.tensor(A.T / L).contiguous())
        self.theta = nn.Parameter(torch.tensor(lam / L, dtype=torch.float64))
        self.layers = layers

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = soft_threshold(y @ self.B.T, self.theta)
        for _ in range(self.layers - 1):
            x = soft_threshold(x @ self.W.T + y @ self.B.T, self.theta)
        return x


def _problem() -> SparseRecovery:
    return SparseRecovery(6, 10, 0.2, seed=0)


def _export(tmp_path, name="tied.pt2", layers=3):
    p = _problem()
    module = TiedLISTA(p.A, layers, p.lam)
    program = torch.export.export(module, (torch.zeros(2, 6, dtype=torch.float64),))
    path = tmp_path / name
    torch.export.save(program, path)
    return module, path


def _rewrite(src, dst, change):
    """Copy the zip ``src`` to ``dst`` with ``change(name, data) -> (name, data) | None`` applied to each member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            out = change(info.filename, zin.read(info.filename))
            if out is not None:
                zout.writestr(out[0], out[1])
    return dst


def _refused(path, capsys):
    assert main(["analyze", str(path), "--analyses", "lipschitz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"unfoldtheory analyze: error: cannot use {path}: ")
    return err


def test_the_program_loads_with_its_weights_and_name(tmp_path):
    module, path = _export(tmp_path)
    program = load_program(path)
    assert program_name(program) == "TiedLISTA"
    for key, value in module.state_dict().items():
        assert torch.equal(program.state_dict[key], value)
    y = torch.tensor(_problem().sample(2, seed=1)[0])  # the program's static batch size
    assert torch.allclose(program.module()(y), module(y), rtol=0, atol=1e-14)


class _Payload:
    """Unpickling this creates the file ``marker``: the proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickled_weight(path, marker, dst):
    """``path`` with the weight W stored as a pickle (``use_pickle``) whose unpickling creates ``marker``."""
    with zipfile.ZipFile(path) as z:
        config_name = next(n for n in z.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(z.read(config_name))
    file = config["config"]["W"]["path_name"]
    config["config"]["W"]["use_pickle"] = True
    buf = io.BytesIO()
    torch.save(_Payload(marker), buf)
    payloads = {config_name: json.dumps(config).encode(), config_name.replace("model_weights_config.json", file): buf.getvalue()}
    return _rewrite(path, dst, lambda name, data: (name, payloads.get(name, data)))


def test_a_pickled_weight_with_a_payload_is_refused_and_never_runs(tmp_path, capsys):
    _, path = _export(tmp_path)
    marker = tmp_path / "payload-ran"
    evil = _pickled_weight(path, marker, tmp_path / "evil.pt2")
    err = _refused(evil, capsys)
    assert "refused: weight 'W' is stored as a pickle (use_pickle)" in err
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="stored as a pickle"):
        load_program(evil)
    assert not marker.exists()
    try:  # the threat is real: torch's own loader unpickles the weight with weights_only=False and runs the payload
        torch.export.load(evil)
    except Exception:
        pass
    assert marker.exists()


def test_a_pickled_object_in_the_sample_inputs_is_refused(tmp_path, capsys):
    _, path = _export(tmp_path)
    marker = tmp_path / "payload-ran"

    def change(name, data):
        if name.endswith("data/sample_inputs/model.pt"):
            buf = io.BytesIO()
            torch.save(((_Payload(marker),), {}), buf)
            return name, buf.getvalue()
        return name, data

    evil = _rewrite(path, tmp_path / "inputs.pt2", change)
    assert "refused: the sample inputs hold pickled objects other than tensors" in _refused(evil, capsys)
    assert not marker.exists()


@pytest.mark.parametrize(("member", "why"), [("data/constants/opaque_obj_0", "is a pickled object"),
                                             ("data/constants/custom_obj_0", "is a pickled custom object"),
                                             ("data/aotinductor/model/model.so", "compiled AOTInductor code"),
                                             ("data/weights/model.pt", "a pickled state dict (torch's legacy layout)"),
                                             ("models/other.json", "a second program")])
def test_members_outside_a_weights_only_program_are_refused(tmp_path, capsys, member, why):
    _, path = _export(tmp_path)
    root = zipfile.ZipFile(path).namelist()[0].split("/")[0]

    bad = _rewrite(path, tmp_path / "bad.pt2", lambda name, data: (name, data))
    with zipfile.ZipFile(bad, "a") as z:
        z.writestr(f"{root}/{member}", b"\x80\x04N.")
    err = _refused(bad, capsys)
    assert f"refused: member '{member}' " in err and why in err


def _edit_program(path, dst, edit):
    def change(name, data):
        if name.endswith("models/model.json"):
            program = json.loads(data)
            edit(program)
            return name, json.dumps(program).encode()
        return name, data

    return _rewrite(path, dst, change)


def test_guard_code_symbolic_shapes_and_foreign_ops_are_refused(tmp_path, capsys):
    _, path = _export(tmp_path)
    guard = _edit_program(path, tmp_path / "guard.pt2", lambda p: p.__setitem__("guards_code", ["__import__('os')"]))
    assert "refused: the program carries guard code" in _refused(guard, capsys)

    def symbolic(p):
        p["graph_module"]["graph"]["sym_int_values"] = {"s0": {"as_expr": {"expr_str": "__import__('os').getcwd()"}}}

    assert "a symbolic shape expression" in _refused(_edit_program(path, tmp_path / "sym.pt2", symbolic), capsys)

    def foreign(target):
        def edit(p):
            p["graph_module"]["graph"]["nodes"][0]["target"] = target
        return edit

    for target in ("torch.ops.mylib.evil.default", "torch.ops.aten.from_file.default", "builtins.eval"):
        err = _refused(_edit_program(path, tmp_path / "op.pt2", foreign(target)), capsys)
        assert re.search(rf"refused: node '\w+' calls {re.escape(target)}, outside the allowed ops", err)


def test_foreign_truncated_and_text_files_are_named(tmp_path, capsys):
    _, path = _export(tmp_path)
    data = path.read_bytes()
    truncated = tmp_path / "cut.pt2"
    truncated.write_bytes(data[: len(data) // 2])
    assert "a corrupt or truncated zip archive" in _refused(truncated, capsys)
    foreign = tmp_path / "foreign.pt2"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("readme.txt", "hello")
        z.writestr("weights/a.bin", b"\x00" * 8)
    assert "a zip archive without torch's data.pkl (it holds 2 entries: 'readme.txt', 'weights/a.bin')" in \
        _refused(foreign, capsys)
    text = tmp_path / "notes.pt2"
    text.write_text("exported on Monday\n")
    assert "it is a text file (starts with 'exported on Monday" in _refused(text, capsys)
    layout = tmp_path / "layout.pt2"
    with zipfile.ZipFile(layout, "w") as z:
        z.writestr("m/archive_format", "pt2")
        z.writestr("m/archive_version", "0")
    assert "not a complete torch.export program: missing" in _refused(layout, capsys)
    with pytest.raises(CheckpointError, match="the file is empty"):
        check_program_bytes(b"")


def test_a_non_finite_weight_is_a_bad_file(tmp_path, capsys):
    p = _problem()
    module = TiedLISTA(p.A, 2, p.lam)
    with torch.no_grad():
        module.B[1, 2] = float("nan")
    path = tmp_path / "nan.pt2"
    torch.export.save(torch.export.export(module, (torch.zeros(1, 6, dtype=torch.float64),)), path)
    assert "parameter or buffer 'B' of the program has a non-finite entry (nan at flat index 8)" in _refused(path, capsys)


def _rows(out):
    return {line.split(" | ")[0].removeprefix("| "): line for line in out.splitlines() if line.startswith("| ")}


def test_analyze_a_users_program_exits_0_when_everything_that_applies_is_certified(tmp_path, capsys):
    module, path = _export(tmp_path)
    status = main(["analyze", str(path), "--json", "--analyses", "lipschitz,pep,contraction,parameter-lipschitz", *FAST])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["all_certified"] and out["model"] == "TiedLISTA"
    upper, lower = out["bounds"]["lipschitz upper"], out["bounds"]["lipschitz lower"]
    assert lower["certified"] and upper["certified"] and lower["value"] <= upper["value"]
    # the witness is a real pair of inputs of the user's own forward: its ratio is at most the certified constant
    y1, y2 = (torch.tensor(np.array(v, dtype=float)) for v in (lower["certificate"]["y1"], lower["certificate"]["y2"]))
    with torch.no_grad():
        ratio = float(torch.linalg.norm(module(y1[None]) - module(y2[None])) / torch.linalg.norm(y1 - y2))
    assert ratio <= upper["value"] * (1 + 1e-9)
    pep = out["bounds"]["pep proximal gradient (ISTA)"]  # the weights are ISTA's: detected, not declared by a class
    assert pep["certified"] and pep["details"]["detected"] == "proximal gradient (ISTA)"
    assert out["bounds"]["contraction factor"]["certified"]
    assert out["bounds"]["parameter lipschitz"]["certified"]
    assert out["bounds"]["parameter lipschitz"]["details"]["num_parameters"] == sum(p.numel() for p in module.parameters())


def test_an_uncertified_bound_exits_1_with_its_reason_in_the_row(tmp_path, capsys):
    _, path = _export(tmp_path)
    A = tmp_path / "A.npy"
    np.save(A, _problem().A)
    status = main(["analyze", str(path), "--analyses", "lipschitz,coherence", "--sensing-matrix", str(A), *FAST])
    captured = capsys.readouterr()
    assert status == 1 and "not every requested certificate was verified" in captured.err
    row = _rows(captured.out)["coherence error after layer 3"]
    assert "| inf† | not certified | TiedLISTA layer 1: threshold θ = " in row and "is below the required" in row
    assert "| certified |  |" in _rows(captured.out)["lipschitz upper"]


def test_a_named_analysis_that_needs_what_the_program_lacks_exits_1(tmp_path, capsys):
    _, path = _export(tmp_path)
    assert main(["analyze", str(path), "--analyses", "coherence,stability", *FAST]) == 1
    out = capsys.readouterr().out
    assert "- coherence: not applicable (it needs the sensing matrix A (A=, --sensing-matrix); TiedLISTA carries none)" in out
    assert "- stability: not applicable (it needs test inputs" in out


def test_the_module_and_its_program_get_the_same_bounds_from_python(tmp_path):
    from unfoldtheory.analysis import analyze_model

    module, path = _export(tmp_path)
    example = torch.zeros(1, 6, dtype=torch.float64)
    direct = analyze_model(module, ["lipschitz", "contraction"], example_input=example, time_budget=5, restarts=2)
    saved = analyze_model(load_program(path), ["lipschitz", "contraction"], time_budget=5, restarts=2)
    assert direct.model == saved.model == "TiedLISTA"
    for label in ("lipschitz upper", "contraction factor"):
        assert direct.bounds[label].certified and direct.bounds[label].value == saved.bounds[label].value


def test_unfold_save_writes_a_users_module_as_a_checked_program(tmp_path):
    from unfoldtheory import unfold

    p = _problem()
    module = TiedLISTA(p.A, 3, p.lam)
    with pytest.raises(TypeError, match="example_input"):
        unfold.save(module, tmp_path / "mine.pt2")
    path = unfold.save(module, tmp_path / "mine.pt2", example_input=torch.zeros(2, 6, dtype=torch.float64))
    program = load_program(path)
    y = torch.tensor(p.sample(2, seed=3)[0])
    assert torch.equal(program.module()(y), module(y))
    assert main(["analyze", str(path), "--analyses", "lipschitz", *FAST]) == 0


class ProductISTA(nn.Module):
    """ISTA written as x − γ(xAᵀ − y)A with a learned step: a trace in layer form forms the product AᵀA."""

    def __init__(self, A: np.ndarray) -> None:
        super().__init__()
        self.A = torch.tensor(A)
        self.step = nn.Parameter(torch.tensor(0.5 / float(np.linalg.norm(A, 2) ** 2), dtype=torch.float64))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = torch.zeros(y.shape[0], self.A.shape[1], dtype=y.dtype)
        for _ in range(3):
            x = torch.nn.functional.softshrink(x - self.step * (x @ self.A.T - y) @ self.A, 0.01)
        return x


def test_the_lipschitz_analysis_reads_the_trace_that_forms_no_product():
    from unfoldtheory.analysis import Subject, analyze_model

    p = _problem()
    module, y = ProductISTA(p.A), torch.zeros(2, 6, dtype=torch.float64)
    subject = Subject(module, example_input=y, A=p.A)
    plain, exact = subject.spec(), subject.spec(exact=True)
    assert subject.formed_products and exact.num_layers > plain.num_layers
    Y = p.sample(5, seed=4)[0]
    assert np.allclose(exact.evaluate(Y), module(torch.tensor(Y)).detach().numpy(), rtol=0, atol=1e-13)
    result = analyze_model(module, ["lipschitz", "contraction"], example_input=y, A=p.A, time_budget=5, restarts=2)
    upper, lower = result.bounds["lipschitz upper"], result.bounds["lipschitz lower"]
    assert upper.certified and lower.value <= upper.value
    assert "product" in result.bounds["contraction factor"].details["formed_products"]
