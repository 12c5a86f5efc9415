"""Sparse ``X`` (scipy.sparse CSR/CSC matrices and arrays) in the first layer, never made dense."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import flatnn

FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array, sp.coo_matrix]


def _problem(m=30, n=12, seed=0, sizes=(12, 6, 3), density=0.3, **kw):
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((m, n)) < density, rng.normal(size=(m, n)), 0.0)
    net = flatnn.Network(sizes, **kw)
    return net, net.init(rng), dense, rng.integers(0, sizes[-1], m), rng


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lam", [0.0, 0.4])
def test_every_evaluation_agrees_with_the_dense_input(fmt, lam):
    net, params, dense, y, rng = _problem(hidden="tanh")
    X = fmt(dense)
    v = rng.normal(size=net.n_params)
    w = rng.uniform(0, 2, dense.shape[0])
    assert np.isclose(net.cost(params, X, y, lam), net.cost(params, dense, y, lam), rtol=1e-13)
    for name, args, kw in [
        ("grad", (), {}),
        ("grad", (), {"sample_weight": w}),
        ("hessp", (v,), {}),
        ("gnvp", (v,), {"sample_weight": w}),
    ]:
        got = getattr(net, name)(params, *args, X, y, lam, **kw)
        want = getattr(net, name)(params, *args, dense, y, lam, **kw)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(net.forward(params, X), net.forward(params, dense), rtol=1e-13)
    np.testing.assert_array_equal(net.predict(params, X), net.predict(params, dense))
    assert net.accuracy(params, X, y) == net.accuracy(params, dense, y)


def test_sparse_gradient_matches_central_differences():
    net, params, dense, y, _ = _problem(m=8, sizes=(12, 4, 3), hidden="sigmoid")
    assert flatnn.check_grad(net, params, sp.csr_matrix(dense), y, 0.3).max_rel_error < 1e-6


def test_a_wide_first_layer_gradient_spans_several_write_bands():
    # more than one 1024-column band of the transposed gradient write, every column used
    net, params, dense, y, _ = _problem(m=40, n=2500, sizes=(2500, 5, 3), density=0.05)
    for X in (sp.csr_matrix(dense), sp.csc_matrix(dense)):
        np.testing.assert_allclose(
            net.grad(params, X, y, 0.2), net.grad(params, dense, y, 0.2), rtol=1e-12, atol=1e-15
        )


def test_single_layer_network_and_float32():
    net, params, dense, y, _ = _problem(sizes=(12, 3))
    X = sp.csr_matrix(dense.astype(np.float32))
    p32 = params.astype(np.float32)
    out = net.forward(p32, X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, net.forward(p32, dense.astype(np.float32)), rtol=1e-6)
    c, g = net.cost_grad(p32, X, y)
    assert g.dtype == np.float32


def test_many_rows_over_several_threads_agree_with_dense():
    net, params, dense, y, _ = _problem(m=5000, density=0.05)
    X = sp.csr_matrix(dense)
    with flatnn.threads.using(2):
        c, g = net.cost_grad(params, X, y, 0.1)
    c2, g2 = net.cost_grad(params, dense, y, 0.1)
    assert np.isclose(c, c2, rtol=1e-12)
    np.testing.assert_allclose(g, g2, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kind", [sp.csr_matrix, sp.csr_array])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_a_row_block_of_csr_shares_the_entries_and_equals_scipys_slice(kind, index_dtype):
    from flatnn.core.evaluation import row_block

    _, _, dense, _, _ = _problem(m=300, density=0.1)
    X = kind(dense)
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    block = row_block(X, 40, 170)
    assert type(block) is type(X) and block.shape == (130, X.shape[1])
    assert np.shares_memory(block.data, X.data) and np.shares_memory(block.indices, X.indices)
    assert block.indptr.dtype == X.indptr.dtype and block.indptr[0] == 0
    block.check_format(full_check=True)
    np.testing.assert_array_equal(block.toarray(), dense[40:170])
    assert row_block(X, 0, 300) is X


def test_a_row_block_keeps_duplicate_entries_summed_as_x_does():
    from flatnn.core.evaluation import row_block

    # (0, 1) stored twice: not canonical; every product must still sum both
    X = sp.csr_matrix(
        (np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 1, 0, 2]), np.array([0, 2, 3, 4])),
        shape=(3, 3),
    )
    block = row_block(X, 0, 2)
    assert not block.has_canonical_format
    W = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(block @ W, X.toarray()[:2] @ W)
    np.testing.assert_array_equal(X.data, [1.0, 2.0, 3.0, 4.0])  # X left as it was


def test_objective_and_check_data_accept_sparse_input():
    net, params, dense, y, _ = _problem()
    X = sp.csc_matrix(dense)
    obj = flatnn.Objective(net, X, y, 0.2)
    assert obj.X is X and obj.m == dense.shape[0]
    assert np.isclose(obj.cost(params), net.cost(params, dense, y, 0.2), rtol=1e-13)


def test_input_is_not_modified_or_densified():
    net, params, dense, y, _ = _problem()
    X = sp.csr_matrix(dense)
    data, indices = X.data.copy(), X.indices.copy()
    net.cost_grad(params, X, y, 0.1)
    net.hessp(params, params, X, y, 0.1)
    assert sp.issparse(X) and np.array_equal(X.data, data) and np.array_equal(X.indices, indices)


def test_peak_memory_stays_far_below_a_dense_copy():
    # 2000 x 100000 at 0.1 % density: 1.6 GB dense, about 2.4 MB of CSR.
    rng = np.random.default_rng(1)
    X = sp.random(2000, 100_000, density=0.001, format="csr", random_state=rng)
    net = flatnn.Network((100_000, 8, 2), hidden="relu")
    params = net.init(2)
    y = rng.integers(0, 2, 2000)
    tracemalloc.start()
    try:
        net.cost_grad(params, X, y, 0.1)
        net.predict(params, X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the gradient of W_1 (8 x 100001 float64, 6.4 MB) and its transposed product dominate
    assert peak < 64 * 2**20, peak


def test_non_finite_sparse_input_names_the_row():
    net, params, dense, y, _ = _problem()
    dense[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        net.cost(params, sp.csr_matrix(dense), y)


def test_sparse_input_of_the_wrong_width_is_refused():
    net, params, dense, y, _ = _problem()
    with pytest.raises(ValueError, match="features"):
        net.cost(params, sp.csr_matrix(dense[:, :5]), y)


# ------------------------------------------------------------------ sgd
SGD_FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array]


@pytest.mark.parametrize("fmt", SGD_FORMATS)
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"weighted": True},
        {"dropout": [0.2, 0.3]},
        {"batch_size": 60, "method": "sgd"},
        {"shuffle": False},
        {"validation": True, "early_stopping": 2},
    ],
    ids=["plain", "weights", "dropout", "full-batch", "no-shuffle", "validation"],
)
def test_sgd_on_sparse_X_equals_sgd_on_its_dense_copy(fmt, extra):
    net, params, dense, y, rng = _problem(m=60, hidden="tanh")
    kw = {"epochs": 3, "batch_size": 16, "learning_rate": 0.1, "method": "adam", "rng": 4}
    kw.update(extra)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0, 2, 60)
    sparse_kw, dense_kw = dict(kw), dict(kw)
    if kw.pop("validation", False):
        sparse_kw["validation"] = (fmt(dense[:20]), y[:20])
        dense_kw["validation"] = (dense[:20], y[:20])
    a = flatnn.sgd(net, params, fmt(dense), y, 0.1, **sparse_kw)
    b = flatnn.sgd(net, params, dense, y, 0.1, **dense_kw)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-10, atol=1e-13)
    assert np.isclose(a.fun, b.fun, rtol=1e-10)
    assert [e["fun"] for e in a.history] == pytest.approx([e["fun"] for e in b.history])
    if "validation" in sparse_kw:
        assert a.history[-1]["val_cost"] == pytest.approx(b.history[-1]["val_cost"])


def test_sgd_keeps_float32_sparse_input_in_float32_and_never_modifies_it():
    net, params, dense, y, _ = _problem(m=40)
    X = sp.csr_matrix(dense.astype(np.float32))
    data, indices = X.data.copy(), X.indices.copy()
    res = flatnn.sgd(
        net, params.astype(np.float32), X, y, epochs=2, batch_size=8, learning_rate=0.1, rng=0
    )
    assert res.x.dtype == np.float32
    assert np.array_equal(X.data, data) and np.array_equal(X.indices, indices)


def test_sgd_refuses_a_transform_and_names_non_finite_rows_of_sparse_input():
    net, params, dense, y, _ = _problem()
    X = sp.csr_matrix(dense)
    with pytest.raises(ValueError, match="transform works on dense batches"):
        flatnn.sgd(
            net, params, X, y, epochs=1, batch_size=8, learning_rate=0.1, transform=lambda b, g: b
        )
    X.data[3] = np.nan
    row = int(X.tocoo().row[3])
    with pytest.raises(ValueError, match=f"first at row {row}"):
        flatnn.sgd(net, params, X, y, epochs=1, batch_size=8, learning_rate=0.1)


def test_sgd_peak_memory_stays_far_below_a_dense_copy():
    # 2000 x 100000 at 0.1 % density: 1.6 GB dense, about 2.4 MB of CSR (CSC: converted
    # once, another 2.4 MB); a dense batch of 200 rows alone would be 160 MB.
    rng = np.random.default_rng(1)
    X = sp.random(2000, 100_000, density=0.001, format="csc", random_state=rng)
    net = flatnn.Network((100_000, 8, 2), hidden="relu")
    y = rng.integers(0, 2, 2000)
    val = (X[:300], y[:300])
    tracemalloc.start()
    try:
        res = flatnn.sgd(
            net,
            net.init(2),
            X,
            y,
            0.1,
            epochs=2,
            batch_size=200,
            learning_rate=0.1,
            method="adam",
            rng=0,
            validation=val,
            sample_weight=np.ones(2000),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.nit == 2
    # params, gradient, adam's two moments and the scratch (8 x 100001 float64 each,
    # 6.4 MB), and the transposed product of W_1's gradient dominate
    assert peak < 96 * 2**20, peak


@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csr_array])
def test_a_wide_minibatch_gives_the_dense_results_bit_for_bit(fmt):
    # 16 rows of 400 columns at 1 %: the products use only the columns the batch holds
    net, params, dense, y, rng = _problem(m=64, n=400, sizes=(400, 6, 3), density=0.01)
    X = fmt(dense)
    for rows in (slice(0, 16), slice(5, 9)):
        part = X[rows]
        assert 2 * part.nnz < part.shape[1]
        for lam in (0.0, 0.3):
            c, g = net.cost_grad(params, part, y[rows], lam)
            c_dense, g_dense = net.cost_grad(params, dense[rows], y[rows], lam)
            assert c == pytest.approx(c_dense, rel=1e-14)
            np.testing.assert_allclose(g, g_dense, rtol=1e-13, atol=1e-16)
        assert np.array_equal(net.forward(params, part), net.forward(params, dense[rows]))
    kw = dict(epochs=2, batch_size=16, learning_rate=0.1, method="adam", rng=1, dropout=[0.2, 0])
    a = flatnn.sgd(net, params, X, y, 0.1, **kw)
    b = flatnn.sgd(net, params, dense, y, 0.1, **kw)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-10, atol=1e-13)
