"""Checkpoints: every model survives save/load exactly (trained, float32), and a file that is not ours,
is corrupt, holds code, or does not fit its model raises CheckpointError without running anything."""

import json
import os
import pathlib
import pickle
import re
import zipfile

import numpy as np
import pytest
import torch

from unfoldtheory import unfold
from unfoldtheory.problems.sparse_recovery import SparseRecovery
from unfoldtheory.train import fit
from unfoldtheory.unfold import ALISTA, LISTA, CheckpointError, HybridISTA, UnfoldedISTA, UnfoldedModel, load, save

SPARSE_MODELS = [getattr(unfold, name) for name in unfold.MODEL_CLASSES
                 if isinstance(getattr(unfold, name), type) and issubclass(getattr(unfold, name), UnfoldedModel)]
PROBLEM = SparseRecovery(6, 9, 0.2, lam=0.1, seed=3)
Y, _ = PROBLEM.sample(5, seed=0)


def _perturbed(cls, seed=0):
    model = cls(PROBLEM.A, 3, PROBLEM.lam)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.as_tensor(rng.normal(0, 0.1 * (float(p.abs().mean()) or 1.0), tuple(p.shape)), dtype=p.dtype))
    model.project_parameters()
    return model


def _assert_same_model(a, b):
    assert type(a) is type(b)
    assert a.config() == b.config()
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k
    inputs = np.random.default_rng(0).standard_normal((5, a.m))
    with torch.no_grad():
        assert torch.equal(a(inputs), b(inputs))


def _payload(tmp_path, model=None):
    """A valid checkpoint's payload, read back as plain data, for tampering."""
    path = tmp_path / "good.pt"
    save(model if model is not None else UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam), path)
    return torch.load(path, weights_only=True)


def _write(tmp_path, payload, name="bad.pt"):
    path = tmp_path / name
    torch.save(payload, path)
    return path


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("cls", SPARSE_MODELS, ids=lambda c: c.__name__)
def test_round_trip_is_exact(cls, tmp_path):
    model = _perturbed(cls)
    path = save(model, tmp_path / "m.pt")
    assert pathlib.Path(path).is_file()
    loaded = load(path)
    _assert_same_model(model, loaded)
    # the spec (everything the analyses see) survives as well
    np.testing.assert_array_equal(loaded.spec().evaluate(Y), model.spec().evaluate(Y))


@pytest.mark.parametrize("cls", SPARSE_MODELS, ids=lambda c: c.__name__)
def test_round_trip_keeps_float32(cls, tmp_path):
    model = _perturbed(cls, seed=1).float()
    loaded = load(save(model, tmp_path / "m32.pt"))
    assert all(t.dtype == torch.float32 for t in loaded.state_dict().values())
    _assert_same_model(model, loaded)


@pytest.mark.parametrize("cls", [UnfoldedISTA, LISTA, HybridISTA], ids=lambda c: c.__name__)
def test_round_trip_after_training(cls, tmp_path):
    model = cls(PROBLEM.A, 3, PROBLEM.lam)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, PROBLEM, steps=5, lr=0.05, batch_size=8, progress=False)
    assert any(not torch.equal(init[k], v) for k, v in model.state_dict().items())
    _assert_same_model(model, load(save(model, tmp_path / "trained.pt")))


def test_save_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(TypeError, match=re.escape("save() writes Linear, a module of your own, as a torch.export program: "
                                                     "pass example_input")):
        save(torch.nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(TypeError, match="save\\(\\) takes a torch module, got dict"):
        save({"W": torch.zeros(2)}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


# ---------------------------------------------------------------------------- code is never run
class _Payload:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickled_code_in_a_torch_file_is_refused_and_not_run(tmp_path):
    # the payload is live: an unsafe load really runs it
    probe = tmp_path / "probe"
    torch.save({"x": _Payload(probe)}, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert probe.exists()

    marker = tmp_path / "marker"
    payload = _payload(tmp_path)
    payload["evil"] = _Payload(marker)
    path = _write(tmp_path, payload)
    with pytest.raises(CheckpointError, match=r"refused.*weights_only=True"):
        load(path)
    assert not marker.exists()


def test_a_raw_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"x": os.system}, protocol=2))
    with pytest.raises(CheckpointError, match=r"refused.*weights_only=True"):
        load(path)
    marker = tmp_path / "raw_marker"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(CheckpointError, match="refused"):
        load(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------- foreign and corrupt files
def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path)  # a directory is not a checkpoint either


def test_foreign_torch_files(tmp_path):
    with pytest.raises(CheckpointError, match="not an unfoldtheory model file"):
        load(_write(tmp_path, {"a": torch.zeros(3)}))
    with pytest.raises(CheckpointError, match="not an unfoldtheory model file"):
        load(_write(tmp_path, torch.zeros(3)))
    with pytest.raises(CheckpointError, match="not an unfoldtheory model file"):
        load(_write(tmp_path, UnfoldedISTA(PROBLEM.A, 2, 0.1).state_dict()))


def test_corrupt_files(tmp_path):
    good = save(UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam), tmp_path / "good.pt")
    data = pathlib.Path(good).read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated zip archive"):
        load(truncated)
    # a zip whose central directory survives but whose data.pkl is damaged: torch's reader fails, not a traceback
    damaged = bytearray(data)
    start = data.index(b"data.pkl") + 100
    damaged[start:start + 64] = bytes(64)
    (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError):
        load(tmp_path / "damaged.pt")


# ---------------------------------------------------------------------------- what a foreign file is
def _refusal(path):
    with pytest.raises(CheckpointError) as info:
        load(path)
    return str(info.value)


def test_an_empty_file_is_called_empty(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    assert _refusal(tmp_path / "empty.pt").endswith("not a torch checkpoint: the file is empty")


@pytest.mark.parametrize("text", ["hello world\nthis is a note\n", "Größe λ = 0.1, ‖x‖ ≤ 1\n", "{\"W\": [1, 2]}\n",
                                  "é" * 300])  # the last one is cut inside a 2-byte character by the 512-byte sample
def test_a_text_file_is_called_a_text_file(text, tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text(text, encoding="utf-8")
    message = _refusal(path)
    assert f"not a torch checkpoint: it is a text file (starts with {text[:40]!r})" in message
    assert "pickled" not in message and "code" not in message


def test_random_bytes_are_neither_zip_nor_pickle(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        noise = tmp_path / f"noise{i}.pt"
        data = b"\x00" + rng.bytes(255)  # a NUL byte: never text; 0x00 is no pickle opcode
        noise.write_bytes(data)
        message = _refusal(noise)
        assert "not a torch checkpoint: it is neither a zip archive (torch's format) nor a pickle" in message
        assert data[:16].hex(" ") in message


def test_a_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("readme.txt", "weights/a.bin", "weights/b.bin", "weights/c.bin"):
            archive.writestr(name, "x")
    message = _refusal(path)
    assert "it is a zip archive without torch's data.pkl (it holds 4 entries: 'readme.txt', 'weights/a.bin', " in message
    with zipfile.ZipFile(tmp_path / "none.pt", "w"):
        pass  # an empty zip is only an end-of-central-directory record: not even the local-header magic
    assert "not a torch checkpoint" in _refusal(tmp_path / "none.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 5")
def test_pickles_are_still_refused_as_possible_code(tmp_path):
    for protocol in (0, 2, 5):
        path = tmp_path / f"code{protocol}.pkl"
        path.write_bytes(pickle.dumps({"x": os.system}, protocol=protocol))
        message = _refusal(path)
        assert "refused: the file holds pickled objects other than tensors and plain data (possibly code)" in message
        assert "weights_only=True" in message
    assert "(torch: " in _refusal(tmp_path / "code2.pkl") and "posix.system" in _refusal(tmp_path / "code2.pkl")


def test_a_legacy_format_torch_checkpoint_still_loads(tmp_path):
    model = _perturbed(UnfoldedISTA)
    payload = _payload(tmp_path, model)
    path = tmp_path / "legacy.pt"
    torch.save(payload, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:2] == b"\x80\x02"
    _assert_same_model(model, load(path))


# ---------------------------------------------------------------------------- non-finite parameters
def _with(model, name, index, value):
    with torch.no_grad():
        dict(model.named_parameters(), **dict(model.named_buffers()))[name][index] = value
    return model


@pytest.mark.parametrize(("cls", "name", "index", "value", "expected"), [
    (UnfoldedISTA, "step.0", (), float("nan"), "parameter 'step' of UnfoldedISTA has a non-finite entry (nan at index 0)"),
    (UnfoldedISTA, "threshold.2", (), float("inf"),
     "parameter 'threshold' of UnfoldedISTA has a non-finite entry (inf at index 2)"),
    (LISTA, "W1.1", (2, 3), float("-inf"), "parameter 'W1.1' of LISTA has a non-finite entry (-inf at index (2, 3))"),
    # ALISTA's W is a constructor argument: its own check names it while the model is rebuilt
    (ALISTA, "W", (0, 1), float("nan"), "checkpoint does not fit ALISTA: W has a non-finite entry at index (0, 1) (nan)"),
])
def test_a_non_finite_parameter_is_refused_by_name(cls, name, index, value, expected, tmp_path):
    model = _with(cls(PROBLEM.A, 3, PROBLEM.lam), name, index, value)
    path = save(model, tmp_path / "bad.pt")
    message = _refusal(path)
    assert message == f"{path}: {expected}"
    assert "V[" not in message


def test_every_non_finite_entry_is_counted(tmp_path):
    from unfoldtheory.unfold.finite import check_finite_parameters

    model = LISTA(PROBLEM.A, 2, PROBLEM.lam)
    with torch.no_grad():
        model.W1[0][1:3, 0] = float("nan")
    with pytest.raises(ValueError, match=re.escape("parameter 'W1.0' of LISTA has a non-finite entry (nan at index (1, 0); "
                                                   "2 of 54 entries are non-finite)")):
        check_finite_parameters(model)
    with torch.no_grad():
        model.W1[0].fill_(1.0)
        model.A[0, 0] = float("inf")
    with pytest.raises(ValueError, match=re.escape("buffer 'A' of LISTA has a non-finite entry (inf at index (0, 0))")):
        check_finite_parameters(model)
    with pytest.raises(ValueError, match="expected a torch model"):
        check_finite_parameters(np.zeros(3))


def test_a_non_finite_A_in_a_checkpoint_is_refused_by_name(tmp_path):
    payload = _payload(tmp_path)
    payload["state_dict"]["A"][1, 2] = float("nan")
    message = _refusal(_write(tmp_path, payload))
    assert "A has a non-finite entry at index (1, 2) (nan)" in message


# ---------------------------------------------------------------------------- ours, but wrong
def test_wrong_version(tmp_path):
    payload = _payload(tmp_path)
    payload["version"] = 2
    with pytest.raises(CheckpointError, match="checkpoint version 2; this unfoldtheory reads 1"):
        load(_write(tmp_path, payload))


def test_unknown_class(tmp_path):
    payload = _payload(tmp_path)
    config = json.loads(payload["config"])
    config["class"] = "NoSuchModel"
    payload["config"] = json.dumps(config)
    with pytest.raises(CheckpointError, match="NoSuchModel"):
        load(_write(tmp_path, payload))


def test_malformed_config(tmp_path):
    payload = _payload(tmp_path)
    payload["config"] = "{not json"
    with pytest.raises(CheckpointError, match="malformed checkpoint"):
        load(_write(tmp_path, payload, "a.pt"))
    payload = _payload(tmp_path)
    del payload["state_dict"]
    with pytest.raises(CheckpointError, match="malformed checkpoint"):
        load(_write(tmp_path, payload, "b.pt"))
    payload = _payload(tmp_path)
    config = json.loads(payload["config"])
    config["depth"] = 7
    payload["config"] = json.dumps(config)
    with pytest.raises(CheckpointError, match="does not fit UnfoldedISTA"):
        load(_write(tmp_path, payload, "c.pt"))


def test_wrong_shaped_parameter(tmp_path):
    payload = _payload(tmp_path)
    payload["state_dict"]["threshold.1"] = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(CheckpointError, match="does not fit UnfoldedISTA"):
        load(_write(tmp_path, payload))
    payload = _payload(tmp_path, LISTA(PROBLEM.A, 3, PROBLEM.lam))
    payload["state_dict"]["W1.0"] = torch.zeros(9, 5, dtype=torch.float64)
    with pytest.raises(CheckpointError, match="does not fit LISTA"):
        load(_write(tmp_path, payload, "lista.pt"))


def test_wrong_shaped_A(tmp_path):
    payload = _payload(tmp_path)
    payload["state_dict"]["A"] = torch.ones(8, 9, dtype=torch.float64)
    with pytest.raises(CheckpointError):
        load(_write(tmp_path, payload))


@pytest.mark.parametrize("change", ["wrong_shape", "missing", "extra"])
def test_the_message_names_the_offending_tensor(change, tmp_path):
    payload = _payload(tmp_path)
    if change == "wrong_shape":
        payload["state_dict"]["threshold.1"] = torch.zeros(3, dtype=torch.float64)
        name = "threshold.1"
    elif change == "missing":
        del payload["state_dict"]["step.2"]
        name = "step.2"
    else:
        payload["state_dict"]["bonus"] = torch.zeros(1)
        name = "bonus"
    with pytest.raises(CheckpointError, match=re.escape(name)):
        load(_write(tmp_path, payload))


def test_missing_and_extra_tensors(tmp_path):
    payload = _payload(tmp_path)
    del payload["state_dict"]["A"]
    with pytest.raises(CheckpointError, match="has no tensor 'A'"):
        load(_write(tmp_path, payload, "a.pt"))
    payload = _payload(tmp_path)
    del payload["state_dict"]["step.2"]
    with pytest.raises(CheckpointError, match="does not fit UnfoldedISTA"):
        load(_write(tmp_path, payload, "b.pt"))
    payload = _payload(tmp_path)
    payload["state_dict"]["bonus"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="does not fit UnfoldedISTA"):
        load(_write(tmp_path, payload, "c.pt"))


def test_non_tensor_in_state_dict(tmp_path):
    payload = _payload(tmp_path)
    payload["state_dict"]["threshold.0"] = 0.5
    with pytest.raises(CheckpointError, match="the state dict is not a dictionary of tensors"):
        load(_write(tmp_path, payload, "a.pt"))
    payload = _payload(tmp_path)
    payload["state_dict"] = [torch.zeros(2)]
    with pytest.raises(CheckpointError, match="the state dict is not a dictionary of tensors"):
        load(_write(tmp_path, payload, "b.pt"))


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_float32_alista_with_coherent_columns_reloads(tmp_path):
    rng = np.random.default_rng(2)
    B = rng.standard_normal((8, 4))
    A = np.hstack([B, B + 0.1 * rng.standard_normal((8, 4))])
    A /= np.linalg.norm(A, axis=0)
    model = ALISTA(A, 2, 0.1).float()
    _assert_same_model(model, load(save(model, tmp_path / "alista32.pt")))
