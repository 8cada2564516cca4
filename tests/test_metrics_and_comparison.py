"""NMSE against a hand computation; the comparison helpers against the classical iterations."""

import numpy as np
import pytest

from unfoldtheory.classical import fista, ista
from unfoldtheory.comparison import TABLE_HEADER, classical_results, nmse_figure, table_rows, train_and_evaluate
from unfoldtheory.metrics import nmse_db
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.unfold import ALISTA


def test_nmse_db_closed_form():
    x = np.array([[3.0, 4.0]])  # ‖x‖² = 25
    assert nmse_db(x + np.array([[0.5, 0.0]]), x) == pytest.approx(10 * np.log10(0.25 / 25))
    assert nmse_db(x, x) == -np.inf


@pytest.mark.parametrize(("est", "truth", "match"), [
    (np.zeros((2, 3)), np.zeros((2, 2)), "expected the truth's"),
    (np.zeros(2), np.zeros(2), "all zeros"),
    (np.array([np.nan, 1.0]), np.ones(2), "non-finite"),
])
def test_nmse_db_bad_input(est, truth, match):
    with pytest.raises(ValueError, match=match):
        nmse_db(est, truth)


def test_classical_results_match_the_iterations():
    p = SparseRecovery(12, 24, 0.2, seed=0)
    Y, X = p.sample(50, seed=1)
    ista_row, fista_row = classical_results(p, Y, X, 5)
    assert ista_row.nmse_db == pytest.approx([nmse_db(x, X) for x in ista(p.A, Y, p.lam, 5)[1:]])
    assert fista_row.nmse_db == pytest.approx([nmse_db(x, X) for x in fista(p.A, Y, p.lam, 5)[1:]])
    assert ista_row.parameters == 0 and ista_row.flops_per_sample == 5 * (4 * 12 * 24 + 3 * 24)


def test_train_and_evaluate_and_the_table(tmp_path):
    p = SparseRecovery(12, 24, 0.2, seed=0)
    Y, X = p.sample(100, seed=1)
    results = classical_results(p, Y, X, 3)
    model = ALISTA(p.A, 3, p.lam)
    learned, history = train_and_evaluate("ALISTA", model, p, (Y, X), steps=40, lr=0.02, progress=False)
    assert len(history.loss) == 40 and learned.parameters == 6 and len(learned.nmse_db) == 3
    rows = table_rows([*results, learned])
    assert all(len(r) == len(TABLE_HEADER) for r in rows)
    ista_nmse = results[0].final_nmse_db
    assert rows[2][3] == pytest.approx(ista_nmse - learned.final_nmse_db)  # gain over ISTA
    png, pdf = nmse_figure([*results, learned], tmp_path / "f", "title")
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0
