"""Contract, recall, persistence and mutation tests for the HNSW, exact and LSH vector indexes."""
# Long: one contract suite parametrised over the three index kinds, then each kind's persistence and mutation cases.

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wren.core.index.base import VectorIndex
from wren.core.index.exact import IdMap
from wren.core.index.factory import INDEX_KINDS, build_index, load_index
from wren.core.index.hnsw import HnswIndex
from wren.core.index.lsh import LshIndex
from wren.core.index.lsh_buckets import Buckets

DIM = 64
N_ITEMS = 5_000
N_CLUSTERS = 50
SPREAD = 0.7
K = 100
HNSW_RECALL_FLOOR = 0.99
LSH_RECALL_FLOOR = 0.75  # measured 0.81-0.84 over index seeds 0-5 (defaults)
LSH_SCANNED_BOUND = 0.10  # mean candidates / catalog, measured 0.065-0.081 over the same seeds
SMALL = 1_000
# "hnsw" is the backend as served (large queries on a small catalogue become exact scans);
# "hnsw_graph" turns the scan off, so the contract tests also hold the graph itself to it.
VARIANTS = (*INDEX_KINDS, "hnsw_graph")


def backend(variant: str) -> str:
    return "hnsw" if variant == "hnsw_graph" else variant


def build(variant: str, dim: int, ids: np.ndarray, vectors: np.ndarray, **params) -> VectorIndex:
    if variant == "hnsw_graph":
        params.setdefault("full_scan_share", 0.0)
    return build_index(backend(variant), dim, ids, vectors, **params)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """float32 [n, DIM]: N(0, I) cluster centres plus N(0, SPREAD^2 I) noise (within-cluster cosine ~0.67)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_CLUSTERS, DIM)).astype(np.float32)
    labels = rng.integers(0, N_CLUSTERS, n)
    return (centres[labels] + SPREAD * rng.standard_normal((n, DIM))).astype(np.float32)


def item_ids(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 7 + 3


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(N_ITEMS)


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    return item_ids(N_ITEMS)


@pytest.fixture(scope="module")
def queries(vectors: np.ndarray) -> np.ndarray:
    return vectors[::10]


@pytest.fixture(scope="module")
def built(vectors: np.ndarray, ids: np.ndarray) -> dict[str, VectorIndex]:
    return {kind: build(kind, DIM, ids, vectors) for kind in VARIANTS}


@pytest.fixture(scope="module")
def truth(built: dict[str, VectorIndex], queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return built["exact"].search(queries, K)


def small_index(kind: str, n: int = SMALL) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    data, keys = clustered(n, seed=1), item_ids(n)
    return build(kind, DIM, keys, data), keys, data


def test_exact_matches_float64_brute_force(built, vectors, ids, queries, truth) -> None:
    scores = unit(queries.astype(np.float64)) @ unit(vectors.astype(np.float64)).T
    expected = np.sort(scores, axis=1)[:, ::-1][:, :K]
    found_ids, found_scores = truth
    np.testing.assert_allclose(found_scores, expected, atol=1e-5)
    rows = np.searchsorted(ids, found_ids)
    np.testing.assert_allclose(np.take_along_axis(scores, rows, axis=1), expected, atol=1e-5)


@pytest.mark.parametrize("kind", VARIANTS)
def test_search_contract(kind, built, vectors, ids, queries) -> None:
    index = built[kind]
    assert index.kind == backend(kind) and len(index) == N_ITEMS
    found_ids, found_scores = index.search(queries[:50], 20)
    assert found_ids.shape == found_scores.shape == (50, 20)
    assert found_ids.dtype == np.int64 and found_scores.dtype == np.float32
    assert np.all(np.diff(found_scores, axis=1) <= 1e-6)
    assert np.isin(found_ids, ids).all()
    assert all(len(set(row)) == len(row) for row in found_ids)
    true_scores = np.einsum("qkd,qd->qk", unit(vectors)[np.searchsorted(ids, found_ids)], unit(queries[:50]))
    np.testing.assert_allclose(found_scores, true_scores, atol=1e-4)
    empty_ids, empty_scores = index.search(queries[:3], 0)
    assert empty_ids.shape == empty_scores.shape == (3, 0)


@pytest.mark.parametrize("kind", VARIANTS)
def test_self_query_finds_itself_first(kind, built, vectors, ids) -> None:
    found_ids, found_scores = built[kind].search(vectors[:200] * 3.5, 5)
    np.testing.assert_array_equal(found_ids[:, 0], ids[:200])
    np.testing.assert_allclose(found_scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", VARIANTS)
def test_pads_when_k_exceeds_size(kind) -> None:
    data = clustered(5, seed=2)
    index = build(kind, DIM, np.array([10, 20, 30, 40, 50]), data)
    found_ids, found_scores = index.search(data, 8)
    assert found_ids.shape == (5, 8)
    np.testing.assert_array_equal(found_ids[:, 0], [10, 20, 30, 40, 50])
    real = found_ids >= 0
    assert np.all(real[:, 5:] == 0)
    assert np.all(np.diff(real.astype(int), axis=1) <= 0)
    assert np.all(found_ids[~real] == -1) and np.all(np.isneginf(found_scores[~real]))
    assert np.isfinite(found_scores[real]).all()
    if kind != "lsh":
        assert real[:, :5].all()


@pytest.mark.parametrize("kind", VARIANTS)
def test_empty_index_returns_padding(kind) -> None:
    index = build(kind, DIM, np.empty(0, np.int64), np.empty((0, DIM), np.float32))
    found_ids, found_scores = index.search(clustered(2), 4)
    assert len(index) == 0
    assert (found_ids == -1).all() and np.isneginf(found_scores).all()


@pytest.mark.parametrize("kind", VARIANTS)
def test_replacing_an_id_moves_it(kind) -> None:
    index, keys, data = small_index(kind)
    target, old = keys[17], data[17]
    index.add(np.array([target]), -old[None, :])
    assert len(index) == SMALL
    new_ids, new_scores = index.search(-old[None, :], 3)
    assert new_ids[0, 0] == target and new_scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    old_ids, _ = index.search(old[None, :], 10)
    assert target not in old_ids[0]


@pytest.mark.parametrize("kind", VARIANTS)
def test_duplicate_ids_in_one_batch_keep_the_last_vector(kind) -> None:
    data = clustered(3, seed=3)
    index = build(kind, DIM, np.array([1, 2, 1]), data)
    assert len(index) == 2
    found_ids, found_scores = index.search(data, 1)
    assert found_ids[2, 0] == 1 and found_scores[2, 0] == pytest.approx(1.0, abs=1e-5)
    assert found_scores[0, 0] < 0.999


@pytest.mark.parametrize("kind", VARIANTS)
def test_rejects_bad_input(kind) -> None:
    index = build(kind, DIM, np.array([1]), clustered(1))
    with pytest.raises(ValueError):
        index.add(np.array([2]), np.ones((1, DIM + 1), np.float32))
    with pytest.raises(ValueError):
        index.add(np.array([-1]), np.ones((1, DIM), np.float32))
    with pytest.raises(ValueError):
        index.add(np.array([2]), np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError):
        index.add(np.array([2, 3]), np.ones((1, DIM), np.float32))
    with pytest.raises(ValueError):
        index.search(np.ones((1, DIM - 1), np.float32), 1)
    with pytest.raises(ValueError):
        index.search(np.ones((1, DIM), np.float32), -1)


@pytest.mark.parametrize("kind", VARIANTS)
def test_save_load_round_trip_then_add(kind, tmp_path: Path) -> None:
    index, keys, data = small_index(kind)
    index.add(keys[:5], data[5:10])
    queries = data[::20]
    params = json.loads(json.dumps(index.save(tmp_path)))
    before = index.search(queries, 50)
    loaded = load_index(backend(kind), tmp_path, params)
    after = loaded.search(queries, 50)
    assert len(loaded) == len(index) == SMALL
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert loaded.memory_bytes() > 0

    fresh = np.random.default_rng(4).standard_normal((2, DIM)).astype(np.float32)
    loaded.add(np.array([10**12, 10**12 + 1]), fresh)
    assert len(loaded) == SMALL + 2
    found_ids, found_scores = loaded.search(fresh, 1)
    np.testing.assert_array_equal(found_ids[:, 0], [10**12, 10**12 + 1])
    np.testing.assert_allclose(found_scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["exact", "lsh"])
def test_incremental_adds_match_bulk_build(kind, vectors, ids, built) -> None:
    index = build_index(kind, DIM, ids[:200], vectors[:200])
    for start in range(200, N_ITEMS, 97):
        index.add(ids[start : start + 97], vectors[start : start + 97])
    index.add(ids[:300], vectors[:300])
    assert len(index) == N_ITEMS
    probe = vectors[::50]
    bulk_ids, bulk_scores = built[kind].search(probe, 30)
    step_ids, step_scores = index.search(probe, 30)
    assert recall(step_ids, bulk_ids) >= 0.99
    np.testing.assert_allclose(step_scores, bulk_scores, atol=1e-5)


def test_hnsw_recall_at_100(built, queries, truth, record_property) -> None:
    found_ids, _ = built["hnsw_graph"].search(queries, K)
    measured = recall(found_ids, truth[0])
    record_property("hnsw_recall_at_100", measured)
    print(f"HNSW recall@{K} vs exact: {measured:.4f}")
    assert measured >= HNSW_RECALL_FLOOR


def test_lsh_recall_at_100(built, queries, truth, record_property) -> None:
    found_ids, _ = built["lsh"].search(queries, K)
    measured = recall(found_ids, truth[0])
    record_property("lsh_recall_at_100", measured)
    print(f"LSH recall@{K} vs exact: {measured:.4f} (padded {np.mean(found_ids < 0):.4f})")
    assert measured >= LSH_RECALL_FLOOR
    assert (found_ids >= 0).all()


def test_lsh_scans_a_small_fraction_of_the_catalog(built, queries) -> None:
    index = built["lsh"]
    index.search(queries, K)
    scanned = index.last_candidates
    assert scanned.shape == (len(queries),) and (scanned >= K).all()
    fraction = scanned.mean() / len(index)
    print(f"LSH scanned {fraction:.4f} of the catalog per query (max {scanned.max() / len(index):.4f})")
    assert fraction <= LSH_SCANNED_BOUND


def lsh_own_bucket_counts(index: LshIndex, queries: np.ndarray) -> np.ndarray:
    """Entries (with repeats across tables) in each query's own buckets, before any multi-probe."""
    keys = index._hashing.keys(unit(queries).astype(np.float32))
    return sum((stops - starts).sum(axis=1) for _, starts, stops in index._spans(keys))


def test_lsh_multi_probe_fills_short_queries() -> None:
    data, keys = clustered(SMALL, seed=5), item_ids(SMALL)
    queries = data[:40]
    scanned = {}
    for factor in (1.0, 4.0):
        index = LshIndex(DIM, n_probes=0, probe_factor=factor)
        index.add(keys, data)
        found_ids, _ = index.search(queries, 20)
        assert (found_ids >= 0).all()
        scanned[factor] = index.last_candidates
    assert (lsh_own_bucket_counts(index, queries) < 20).any()  # some queries needed neighbouring buckets
    assert (scanned[1.0] >= 20).all()
    assert (scanned[4.0] >= scanned[1.0]).all() and scanned[4.0].mean() > 2 * scanned[1.0].mean()


def test_lsh_fixed_probes_buy_recall(built, vectors, ids, queries, truth) -> None:
    probed_ids, _ = built["lsh"].search(queries, K)
    probed = built["lsh"].last_candidates.mean()
    index = LshIndex(DIM, n_probes=0, probe_factor=1.0)  # own buckets, more only while short of k
    index.add(ids, vectors)
    own_ids, _ = index.search(queries, K)
    assert index.last_candidates.mean() < probed
    assert recall(own_ids, truth[0]) < recall(probed_ids, truth[0]) - 0.2  # measured 0.50 vs 0.83


def test_lsh_duplicate_heavy_catalog_returns_k_distinct_results_with_true_scores() -> None:
    distinct = clustered(4_000, seed=13)
    data = np.concatenate([distinct, np.repeat(distinct[:1], 600, axis=0), np.repeat(distinct[1:2], 60, axis=0)])
    keys = item_ids(len(data))
    index = LshIndex(DIM)
    index.add(keys, data)
    queries = np.concatenate([distinct[:2], clustered(4_100, seed=13)[4_000:]])
    found_ids, found_scores = index.search(queries, K)
    assert (found_ids >= 0).all()
    assert all(len(set(row)) == K for row in found_ids)
    true_scores = np.einsum("qkd,qd->qk", unit(data)[np.searchsorted(keys, found_ids)], unit(queries))
    np.testing.assert_allclose(found_scores, true_scores, atol=1e-5)
    assert (np.diff(found_scores, axis=1) <= 0).all()
    copies_of = {0: set(keys[(data == distinct[0]).all(axis=1)]), 1: set(keys[(data == distinct[1]).all(axis=1)])}
    assert len(copies_of[0]) == 601 and len(copies_of[1]) == 61
    assert set(found_ids[0]) <= copies_of[0]  # 601 exact matches: any 100 of them are a correct answer
    assert set(found_ids[1, :61]) == copies_of[1]  # all 61 copies score 1.0 and come first
    np.testing.assert_allclose(found_scores[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(found_scores[1, :61], 1.0, atol=1e-5)
    assert found_scores[1, 61] < 0.999


def test_lsh_is_deterministic_for_a_seed(vectors, ids, tmp_path: Path) -> None:
    def build(seed: int) -> LshIndex:
        index = LshIndex(DIM, seed=seed)
        index.add(ids[:2_000], vectors[:2_000])
        return index

    first, second, other = build(3), build(3), build(4)
    assert not np.array_equal(first._main.keys, other._main.keys)
    probe = vectors[2_000:2_100]
    for got, want in zip(first.search(probe, 30), second.search(probe, 30), strict=True):
        np.testing.assert_array_equal(got, want)
    first.save(tmp_path / "first")
    second.save(tmp_path / "second")
    assert (tmp_path / "first" / "lsh.npz").read_bytes() == (tmp_path / "second" / "lsh.npz").read_bytes()


def test_lsh_save_merges_side_table_and_drops_replaced_rows(tmp_path: Path) -> None:
    index, keys, data = small_index("lsh")
    index.add(keys[:10], data[10:20])
    index.add(np.array([10**9]), data[:1])
    assert index._count == SMALL + 11
    params = index.save(tmp_path)
    assert index._count == SMALL + 1 == len(index)
    assert len(index._side.rows) == 0
    loaded = LshIndex.load(tmp_path, params)
    found_ids, found_scores = loaded.search(data[[0, 10]], 2)
    assert found_ids[0, 0] == 10**9
    assert set(found_ids[1]) == {keys[0], keys[10]}
    np.testing.assert_allclose(found_scores[1], 1.0, atol=1e-5)


def test_lsh_bucket_lookups_and_merges_match_a_plain_scan() -> None:
    rng = np.random.default_rng(17)
    table_bits = np.arange(3, dtype=np.uint64) << np.uint64(56)
    keys = rng.integers(0, 40, (300, 3)).astype(np.uint64) | table_bits
    rows = np.arange(300)
    whole = Buckets.build(keys, rows)
    merged = Buckets.build(keys[:200], rows[:200]).merge(Buckets.build(keys[200:], rows[200:]))
    probes = rng.integers(0, 45, (20, 3)).astype(np.uint64) | table_bits
    for buckets in (whole, merged):
        starts, stops = buckets.ranges(probes)
        for probe, start, stop in zip(probes.ravel(), starts.ravel(), stops.ravel(), strict=True):
            assert sorted(buckets.rows[start:stop]) == sorted(rows[(keys == probe).any(axis=1)])
    np.testing.assert_array_equal(merged.keys, whole.keys)
    np.testing.assert_array_equal(merged.offsets, whole.offsets)


def test_lsh_load_rejects_missing_or_corrupt_arrays(tmp_path: Path) -> None:
    index, _, _ = small_index("lsh")
    params = index.save(tmp_path)
    with np.load(tmp_path / "lsh.npz", allow_pickle=False) as files:
        arrays = {name: files[name] for name in files.files}
    broken = [
        {name: value for name, value in arrays.items() if name != "rows"},
        {**arrays, "rows": arrays["rows"][:-1]},
        {**arrays, "projections": arrays["projections"].astype(np.float64)},  # the pre-multi-probe format
    ]
    for case in broken:
        np.savez(tmp_path / "lsh.npz", **case)
        with pytest.raises(ValueError, match="corrupt LSH index"):
            LshIndex.load(tmp_path, params)


def test_hnsw_grows_capacity_and_widens_ef() -> None:
    data, keys = clustered(300, seed=6), item_ids(300)
    index = HnswIndex(DIM, max_elements=16, ef_search=16, full_scan_share=0.0)
    for start in range(0, 300, 7):
        index.add(keys[start : start + 7], data[start : start + 7])
    assert len(index) == 300 and index.capacity >= 300
    found_ids, _ = index.search(data, 1)
    np.testing.assert_array_equal(found_ids[:, 0], keys)
    wide_ids, _ = index.search(data[:3], 250)
    assert (wide_ids >= 0).all() and wide_ids.shape == (3, 250)
    exact = build_index("exact", DIM, keys, data)
    assert recall(wide_ids, exact.search(data[:3], 250)[0]) >= 0.95


def test_hnsw_build_is_deterministic_for_a_seed(vectors, ids, tmp_path: Path) -> None:
    subset = slice(0, 1_500)
    first = build_index("hnsw", DIM, ids[subset], vectors[subset], seed=7)
    second = build_index("hnsw", DIM, ids[subset], vectors[subset], seed=7)
    first.save(tmp_path / "a")
    second.save(tmp_path / "b")
    assert (tmp_path / "a" / "index.bin").read_bytes() == (tmp_path / "b" / "index.bin").read_bytes()
    np.testing.assert_array_equal(first.search(vectors[:50], 10)[0], second.search(vectors[:50], 10)[0])


def test_hnsw_returns_what_the_graph_yields_when_hnswlib_raises() -> None:
    data, keys = clustered(50, seed=8), item_ids(50)
    index = build_index("hnsw", DIM, keys, data, full_scan_share=0.0)

    class Stingy:
        def __init__(self, inner) -> None:
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def knn_query(self, queries, k, num_threads=1):
            if k > 3:
                raise RuntimeError("Cannot return the results in a contiguous 2D array")
            return self.inner.knn_query(queries, k=k, num_threads=num_threads)

    index._index = Stingy(index._index)
    found_ids, found_scores = index.search(data[:4], 10)
    np.testing.assert_array_equal(found_ids[:, 0], keys[:4])
    assert (found_ids[:, :3] >= 0).all() and (found_ids[:, 3:] == -1).all()
    assert np.isneginf(found_scores[:, 3:]).all()


def test_hnsw_scans_exactly_when_a_query_asks_for_a_large_share(vectors, ids, built) -> None:
    index = build_index("hnsw", DIM, ids[:2_000], vectors[:2_000], full_scan_share=0.1)
    exact = build_index("exact", DIM, ids[:2_000], vectors[:2_000])
    queries = vectors[2_000:2_040]
    index.search(queries, 199)
    assert index._scan_vectors is None  # below 10% of 2,000: the graph answered
    graph_memory = index.memory_bytes()
    found_ids, found_scores = index.search(queries, 200)
    assert index._scan_vectors is not None
    assert index.memory_bytes() >= graph_memory + 2_000 * DIM * 4
    expected_ids, expected_scores = exact.search(queries, 200)
    np.testing.assert_allclose(found_scores, expected_scores, atol=1e-5)
    assert recall(found_ids, expected_ids) >= 0.999  # only float ties may swap places


def test_hnsw_scan_follows_adds_replacements_and_emptied_groups() -> None:
    data, keys = clustered(400, seed=15), item_ids(400)
    index = build_index("hnsw", DIM, keys, data)
    exact = build_index("exact", DIM, keys, data)
    queries = clustered(10, seed=16)
    index.search(queries, 300)  # takes the scan copy
    fresh = np.random.default_rng(17).standard_normal((1_500, DIM)).astype(np.float32)
    fresh_ids = np.arange(1_500, dtype=np.int64) + 10**9
    changes = [
        (fresh_ids, fresh),  # new groups, growing the scan copy past its first size
        (keys[:50], -data[:50]),  # replaced vectors: the old ones must be gone
        (keys[50:60], np.repeat(data[60:61], 10, axis=0)),  # joins an existing group, emptying ten
    ]
    for change_ids, change_vectors in changes:
        index.add(change_ids, change_vectors)
        exact.add(change_ids, change_vectors)
        for probe in (queries, change_vectors[:5]):
            found_ids, found_scores = index.search(probe, 400)
            expected_ids, expected_scores = exact.search(probe, 400)
            np.testing.assert_allclose(found_scores, expected_scores, atol=1e-5)
            assert recall(found_ids, expected_ids) >= 0.999
    assert not np.isin(index.search(data[:50], 400)[0][:, :1], keys[:50]).any()


def test_hnsw_full_scan_share_is_validated_and_saved(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="full_scan_share"):
        HnswIndex(DIM, full_scan_share=1.5)
    index = build_index("hnsw", DIM, item_ids(100), clustered(100), full_scan_share=0.25)
    params = json.loads(json.dumps(index.save(tmp_path)))
    assert load_index("hnsw", tmp_path, params).full_scan_share == 0.25
    del params["full_scan_share"]  # bundles written before the scan existed
    assert load_index("hnsw", tmp_path, params).full_scan_share == 1 / 16


def test_memory_bytes_tracks_size(built) -> None:
    for kind, index in built.items():
        assert index.memory_bytes() >= N_ITEMS * DIM * 4, kind
    assert built["hnsw"].memory_bytes() > built["exact"].memory_bytes()


def test_id_map_lookup_and_assign() -> None:
    mapping = IdMap(np.array([30, 10, 20]))
    np.testing.assert_array_equal(mapping.lookup(np.array([10, 20, 30, 40])), [1, 2, 0, -1])
    fresh = np.arange(5_000, dtype=np.int64) * 2 + 1_000
    mapping.assign(fresh, np.arange(3, 5_003))
    mapping.assign(np.array([10]), np.array([99]))
    assert len(mapping) == 5_003
    np.testing.assert_array_equal(mapping.lookup(np.array([10, 1_000, 10_998, 5])), [99, 3, 5_002, -1])


def test_factory_names_valid_kinds_for_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hnsw, exact, lsh"):
        build_index("faiss", DIM, np.array([1]), clustered(1))
    with pytest.raises(ValueError, match="hnsw, exact, lsh"):
        load_index("annoy", tmp_path, {})
    index = build_index("lsh", DIM, np.array([1]), clustered(1), n_tables=3, seed=9)
    assert isinstance(index, LshIndex) and index.n_tables == 3 and index.seed == 9
    assert build_index("hnsw", DIM, item_ids(40), clustered(40)).capacity == 40


# -- HNSW over duplicate-heavy data: byte-identical vectors are stored once per group ----------------

DUP_DISTINCT = 3_000
DUP_BIG_GROUP = 800
DUP_SPREAD_COPIES = 4_200
DUP_RECALL_FLOOR = 0.99
TIE_TOLERANCE = 1e-5


def duplicate_heavy(n_distinct: int, big: int, spread: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 [n, DIM], source int64 [n]) in shuffled order: each of `n_distinct` clustered
    vectors once, plus `big` copies of one of them and `spread` copies spread over up to 399 others with
    weights ~ rank^-0.8 (1 to a few hundred copies each). Rows with equal `source` are byte-identical,
    like cold-start items whose embedding is the mean of the same content neighbours.
    """
    rng = np.random.default_rng(seed)
    distinct = clustered(n_distinct, seed=seed)
    sources = rng.permutation(n_distinct)[: min(400, n_distinct // 2)]
    weights = np.arange(1, len(sources)) ** -0.8
    copies = np.concatenate([np.full(big, sources[0]), rng.choice(sources[1:], spread, p=weights / weights.sum())])
    source = rng.permutation(np.concatenate([np.arange(n_distinct), copies]))
    return distinct[source], source


def tie_aware_recall(found: np.ndarray, keys: np.ndarray, data: np.ndarray, queries: np.ndarray, kth) -> float:
    """Share of returned ids whose true cosine to the query is >= the exact k-th best cosine - 1e-5.

    With ties (identical vectors) any k of the tied ids are a correct answer, so id overlap is ill-defined.
    """
    assert (found >= 0).all()
    rows = np.searchsorted(keys, found)
    cosines = np.einsum("qkd,qd->qk", unit(data.astype(np.float64))[rows], unit(queries.astype(np.float64)))
    return float(np.mean(cosines >= np.asarray(kth, np.float64)[:, None] - TIE_TOLERANCE))


def members_of(keys: np.ndarray, source: np.ndarray, row: int) -> set[int]:
    return set(keys[source == source[row]].tolist())


@pytest.fixture(scope="module")
def dup() -> dict:
    data, source = duplicate_heavy(DUP_DISTINCT, DUP_BIG_GROUP, DUP_SPREAD_COPIES, seed=11)
    keys = item_ids(len(data))
    rng = np.random.default_rng(12)
    near = data[rng.choice(len(data), 200)] + 0.3 * rng.standard_normal((200, DIM)).astype(np.float32)
    fresh = clustered(DUP_DISTINCT + 200, seed=11)[DUP_DISTINCT:]  # same cluster centres, new points
    queries = np.concatenate([fresh, near]).astype(np.float32)
    return {
        "data": data,
        "source": source,
        "keys": keys,
        "queries": queries,
        "hnsw": build_index("hnsw", DIM, keys, data, full_scan_share=0.0),
        "exact": build_index("exact", DIM, keys, data),
    }


def small_duplicate_index(**params) -> tuple[HnswIndex, np.ndarray, np.ndarray, np.ndarray]:
    """A 300-distinct / 800-item duplicate-heavy HNSW index with its keys, vectors and source rows."""
    data, source = duplicate_heavy(300, 120, 380, seed=21)
    keys = item_ids(len(data))
    params.setdefault("full_scan_share", 0.0)
    return build_index("hnsw", DIM, keys, data, **params), keys, data, source


def test_hnsw_tie_aware_recall_on_duplicate_heavy_data(dup, record_property) -> None:
    index, queries = dup["hnsw"], dup["queries"]
    assert len(index) == DUP_DISTINCT + DUP_BIG_GROUP + DUP_SPREAD_COPIES
    assert index.n_groups == DUP_DISTINCT
    assert index._index.get_current_count() == DUP_DISTINCT
    assert np.bincount(dup["source"]).max() == DUP_BIG_GROUP + 1
    found_ids, found_scores = index.search(queries, K)
    _, truth_scores = dup["exact"].search(queries, K)
    assert all(len(set(row)) == K for row in found_ids)
    assert np.all(np.diff(found_scores, axis=1) <= 1e-6)
    measured = tie_aware_recall(found_ids, dup["keys"], dup["data"], queries, truth_scores[:, K - 1])
    record_property("hnsw_duplicate_tie_recall_at_100", measured)
    print(f"HNSW tie-aware recall@{K} on duplicate-heavy data: {measured:.4f}")
    assert measured >= DUP_RECALL_FLOOR


def test_hnsw_query_equal_to_a_duplicated_vector_returns_its_group_first(dup) -> None:
    index, data, source, keys = dup["hnsw"], dup["data"], dup["source"], dup["keys"]
    sizes = np.bincount(source)
    big_row = int(np.flatnonzero(sizes[source] == sizes.max())[0])
    mid_row = int(np.flatnonzero((sizes[source] >= 10) & (sizes[source] <= 60))[0])
    for row, k in ((mid_row, K), (big_row, K), (big_row, 1_000)):
        group = members_of(keys, source, row)
        found_ids, found_scores = index.search(data[row : row + 1] * 2.5, k)
        head = min(k, len(group))
        assert set(found_ids[0, :head].tolist()) <= group and len(set(found_ids[0, :head])) == head
        np.testing.assert_allclose(found_scores[0, :head], 1.0, atol=1e-5)
        assert not set(found_ids[0, head:].tolist()) & group
        assert np.all(found_scores[0, head:] < 0.9999)


def test_hnsw_len_counts_items_not_distinct_vectors() -> None:
    vector = clustered(1, seed=14)
    index = build_index("hnsw", DIM, np.array([5, 6, 7]), np.repeat(vector, 3, axis=0))
    assert len(index) == 3 and index.n_groups == 1
    found_ids, found_scores = index.search(vector, 5)
    assert set(found_ids[0, :3].tolist()) == {5, 6, 7}
    np.testing.assert_allclose(found_scores[0, :3], 1.0, atol=1e-5)
    np.testing.assert_array_equal(found_ids[0, 3:], [-1, -1])
    index.add(np.array([8]), vector)
    assert len(index) == 4 and index.n_groups == 1
    assert index.memory_bytes() > 0


def test_hnsw_add_joins_an_existing_group_or_adds_a_new_vector() -> None:
    index, keys, data, source = small_duplicate_index()
    n_items, n_groups, graph = len(index), index.n_groups, index._index.get_current_count()
    row = int(np.flatnonzero(np.bincount(source)[source] >= 3)[0])
    group = members_of(keys, source, row)

    index.add(np.array([10**12]), data[row : row + 1])
    assert len(index) == n_items + 1 and index.n_groups == n_groups
    assert index._index.get_current_count() == graph
    found_ids, found_scores = index.search(data[row : row + 1], len(group) + 1)
    assert set(found_ids[0].tolist()) == group | {10**12}
    np.testing.assert_allclose(found_scores[0], 1.0, atol=1e-5)

    fresh = np.random.default_rng(15).standard_normal((1, DIM)).astype(np.float32)
    index.add(np.array([10**12 + 1]), fresh)
    assert len(index) == n_items + 2 and index.n_groups == n_groups + 1
    found_ids, found_scores = index.search(fresh, 2)
    assert found_ids[0, 0] == 10**12 + 1 and found_scores[0, 0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("role", ["first member", "later member", "singleton"])
@pytest.mark.parametrize("destination", ["fresh vector", "another group"])
def test_hnsw_replacing_a_vector_moves_the_id_out_of_its_group(role, destination) -> None:
    index, keys, data, source = small_duplicate_index()
    n_items, n_groups = len(index), index.n_groups
    sizes = np.bincount(source)
    if role == "singleton":
        row = int(np.flatnonzero(sizes[source] == 1)[0])
    else:
        shared = np.flatnonzero(sizes[source] >= 3)
        rows_of_group = shared[source[shared] == source[shared[0]]]
        row = int(rows_of_group[0] if role == "first member" else rows_of_group[-1])
    target, old = keys[row], data[row : row + 1]
    others = members_of(keys, source, row) - {target}
    if destination == "fresh vector":
        new = np.random.default_rng(16).standard_normal((1, DIM)).astype(np.float32)
        joined = {target}
    else:
        other_row = int(np.flatnonzero((sizes[source] >= 2) & (source != source[row]))[0])
        new = data[other_row : other_row + 1]
        joined = members_of(keys, source, other_row) | {target}

    index.add(np.array([target]), new)
    assert len(index) == n_items
    expected_groups = n_groups + (destination == "fresh vector") - (role == "singleton")
    assert index.n_groups == expected_groups
    if role == "singleton" and destination == "fresh vector":
        assert index._index.get_current_count() == n_groups  # overwritten in place
    found_ids, found_scores = index.search(new, len(joined) + 3)
    assert set(found_ids[0, : len(joined)].tolist()) == joined
    np.testing.assert_allclose(found_scores[0, : len(joined)], 1.0, atol=1e-5)
    old_ids, old_scores = index.search(old, len(others) + 10)
    assert target not in old_ids[0]
    assert set(old_ids[0, : len(others)].tolist()) == others
    np.testing.assert_allclose(old_scores[0, : len(others)], 1.0, atol=1e-5)
    assert np.all(old_scores[0, len(others) :] < 0.9999)


def test_hnsw_re_adding_an_emptied_groups_vector_revives_it() -> None:
    index, keys, data, source = small_duplicate_index()
    sizes = np.bincount(source)
    row = int(np.flatnonzero(sizes[source] == 1)[0])
    other = int(np.flatnonzero(sizes[source] >= 2)[0])
    n_groups, graph = index.n_groups, index._index.get_current_count()
    index.add(keys[[row]], data[[other]])
    assert index.n_groups == n_groups - 1
    assert keys[row] not in index.search(data[[row]], 20)[0][0]
    index.add(np.array([10**12]), data[[row]])
    assert index.n_groups == n_groups and index._index.get_current_count() == graph
    found_ids, found_scores = index.search(data[[row]], 1)
    assert found_ids[0, 0] == 10**12 and found_scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_hnsw_batched_and_single_replacements_match_exact(monkeypatch) -> None:
    monkeypatch.setattr("wren.core.index.hnsw_groups._MIN_SLACK", 0)  # compact the id pool early too
    bulk, keys, data, source = small_duplicate_index()
    stepwise, _, _, _ = small_duplicate_index()
    rng = np.random.default_rng(17)
    moved = rng.choice(len(keys), 500, replace=False)
    new = data[rng.permutation(moved)]
    new[:40] = clustered(40, seed=18)
    bulk.add(keys[moved], new)
    for start in range(0, len(moved), 9):
        stepwise.add(keys[moved[start : start + 9]], new[start : start + 9])
    expected = data.copy()
    expected[moved] = new
    exact = build_index("exact", DIM, keys, expected)
    queries = np.concatenate([expected[::16], clustered(20, seed=19)])
    _, truth_scores = exact.search(queries, 60)
    for index in (bulk, stepwise):
        assert len(index) == len(keys)
        found_ids, found_scores = index.search(queries, 60)
        assert all(len(set(row)) == 60 for row in found_ids)
        np.testing.assert_allclose(found_scores, truth_scores, atol=1e-5)
        assert tie_aware_recall(found_ids, keys, expected, queries, truth_scores[:, -1]) == 1.0
    assert bulk.n_groups == stepwise.n_groups
    assert stepwise._table.pool_end <= 2 * len(stepwise)


def test_hnsw_duplicate_groups_survive_save_load_then_add(tmp_path: Path) -> None:
    index, keys, data, source = small_duplicate_index()
    sizes = np.bincount(source)
    shared = np.flatnonzero(sizes[source] >= 3)
    index.add(keys[shared[:2]], clustered(2, seed=20))
    index.add(np.array([10**12]), data[shared[2:3]])
    params = json.loads(json.dumps(index.save(tmp_path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["groups.npz", "index.bin"]
    loaded = load_index("hnsw", tmp_path, params)
    assert len(loaded) == len(index) == len(keys) + 1
    assert loaded.n_groups == index.n_groups
    queries = np.concatenate([data[::25], data[shared[:3]]])
    before, after = index.search(queries, 150), loaded.search(queries, 150)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert loaded.memory_bytes() == pytest.approx(index.memory_bytes(), rel=0.05)

    row = int(shared[5])
    group = members_of(keys, source, row) - set(keys[shared[:2]].tolist())
    loaded.add(np.array([10**12 + 1]), data[[row]])
    loaded.add(keys[[row]], clustered(1, seed=22))
    found_ids, _ = loaded.search(data[[row]], len(group) + 5)
    assert set(found_ids[0, : len(group)].tolist()) == group - {keys[row]} | {10**12 + 1}
    assert keys[row] not in found_ids[0]
    assert loaded.search(clustered(1, seed=22), 1)[0][0, 0] == keys[row]
    assert len(loaded) == len(keys) + 2


def test_hnsw_duplicate_build_and_mutations_are_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        index, keys, data, _ = small_duplicate_index(seed=7)
        index.add(keys[:30], data[30:60])
        index.add(keys[60:70], clustered(10, seed=23))
        index.save(tmp_path / name)
    for file in ("index.bin", "groups.npz"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_hnsw_load_rejects_missing_or_corrupt_groups(tmp_path: Path) -> None:
    index, _, _, _ = small_duplicate_index()
    params = index.save(tmp_path)
    with np.load(tmp_path / "groups.npz") as arrays:
        members, offsets, digests = arrays["members"], arrays["offsets"], arrays["digests"]
    np.savez(tmp_path / "groups.npz", members=members, offsets=offsets, digests=digests[:-1])
    with pytest.raises(ValueError, match="corrupt"):
        load_index("hnsw", tmp_path, params)
    (tmp_path / "groups.npz").unlink()
    with pytest.raises(ValueError, match="groups.npz"):
        load_index("hnsw", tmp_path, params)


def test_calibration_widens_a_weak_graph_until_it_reaches_the_target(vectors: np.ndarray, ids: np.ndarray) -> None:
    from pipeline.index_tuning import EF_GRID, calibrate_ef, index_recall_at

    weak = build_index("hnsw", DIM, ids, vectors, m=6, ef_construction=24, ef_search=128, full_scan_share=0.5)
    exact = build_index("exact", DIM, ids, vectors)
    queries = vectors[::25]
    every = calibrate_ef(weak, exact, queries, target=1.01)["tried"]  # unreachable: every width is tried
    assert list(every) == [str(ef) for ef in EF_GRID] and weak.ef_search == EF_GRID[-1]
    assert every[str(EF_GRID[0])] < 0.99 < every[str(EF_GRID[-1])]  # measured 0.980 and 0.995
    result = calibrate_ef(weak, exact, queries, target=0.99)
    chosen = result["ef_search"]
    assert weak.ef_search == chosen and result["recall_at_100"] >= 0.99
    assert all(every[str(ef)] < 0.99 for ef in EF_GRID if ef < chosen)
    assert weak.full_scan_share == 0.5  # restored after measuring the graph alone
    weak.full_scan_share = 0.0
    assert index_recall_at(weak, exact, queries) == pytest.approx(result["recall_at_100"])
    assert calibrate_ef(weak, exact, queries, target=0.5, floor=300)["ef_search"] == 384  # never below the floor


def test_calibration_queries_are_items_and_means_of_item_neighbourhoods(vectors: np.ndarray, ids: np.ndarray) -> None:
    from pipeline.index_tuning import calibration_queries

    exact = build_index("exact", DIM, ids, vectors)
    queries = calibration_queries(exact, ids, vectors, 40, seed=1)
    assert queries.shape == (40, DIM) and queries.dtype == np.float32
    items, tastes = queries[:20], queries[20:]
    assert all(any(np.array_equal(query, vector) for vector in vectors) for query in items)
    for taste in tastes:  # the mean of some item and its four nearest: no stored vector, but close to five
        assert not any(np.array_equal(taste, vector) for vector in vectors)
        top, _ = exact.search(taste[None, :], 5)
        rows = np.searchsorted(ids, top[0])
        assert np.allclose(vectors[rows].mean(axis=0), taste, atol=1e-5)
    assert np.array_equal(queries, calibration_queries(exact, ids, vectors, 40, seed=1))
