"""flatnn.base.memory: the memory a run needs and the memory this process may use."""

import pytest

from flatnn.base import memory


def test_format_bytes_in_decimal_units():
    assert memory.format_bytes(512) == "512 bytes"
    assert memory.format_bytes(1500) == "1.5 kB"
    assert memory.format_bytes(2.5e9) == "2.5 GB"
    assert memory.format_bytes(3e18) == "3000.0 PB"


def test_estimate_is_the_vectors_and_the_activations_of_one_batch():
    # 784-30-10: 23860 parameters; 5 vectors in float32; 64 rows of activations
    need = memory.estimate_bytes(23860, (784, 30, 10), 4, 5, 64)
    assert need == 23860 * 4 * 5 + 4 * 64 * (784 + 30 + 10) * 4
    assert memory.estimate_bytes(10, (2, 3), 8, 1, 0) == 80


@pytest.mark.parametrize("method", ["BFGS", "SLSQP", "trust-krylov"])
def test_methods_with_an_n_by_n_matrix_need_n_vectors(method):
    assert memory.method_vectors(method, 12345) == 12345


def test_update_rules_keep_a_few_vectors():
    assert memory.method_vectors("sgd", 10**6) == 5
    assert memory.method_vectors("adam", 10**6) == 7
    assert memory.method_vectors("L-BFGS-B", 10**6) == 28
    assert memory.method_vectors("CG", 10**6) == 10


def test_available_memory_is_a_positive_count_or_unknown():
    available = memory.available_memory()
    assert available is None or (isinstance(available, int) and available >= 0)
