"""The HNSW group table on its own: grouping by vector bytes, membership moves, digests, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wren.core.index.hnsw_groups import GroupTable, gather_runs, group_rows, row_digests


def members(table: GroupTable, group: int) -> list[int]:
    start, size = table.start[group], table.size[group]
    return sorted(table.pool[start : start + size].tolist())


def test_group_rows_numbers_groups_by_first_appearance() -> None:
    vectors = np.array([[1, 0], [0, 1], [1, 0], [2, 2], [0, 1]], np.float32)
    first, inverse = group_rows(vectors)
    assert first.tolist() == [0, 1, 3] and inverse.tolist() == [0, 1, 0, 2, 1]
    assert group_rows(np.empty((0, 2), np.float32))[0].size == 0


def test_gather_runs_concatenates_slices() -> None:
    pool = np.arange(10, 20)
    assert gather_runs(pool, np.array([0, 5, 8]), np.array([2, 0, 2])).tolist() == [10, 11, 18, 19]


def test_members_move_between_groups_and_digests_find_their_group() -> None:
    digests = row_digests(np.array([[1, 0], [0, 1]], np.float32))
    table = GroupTable(np.array([7, 8, 9], np.int64), np.array([0, 2, 3], np.int64), digests)
    assert (table.n_groups, table.live, len(table)) == (2, 2, 3)
    assert table.find(digests).tolist() == [0, 1]
    assert table.find(row_digests(np.array([[5, 5]], np.float32))).tolist() == [-1]

    table.remove_members(np.array([0]), np.array([8]))
    table.append_members(np.array([1, 1]), np.array([8, 10]))
    table.items.assign(np.array([8, 10]), np.array([1, 1]))
    assert members(table, 0) == [7] and members(table, 1) == [8, 9, 10]
    assert table.items.lookup(np.array([7, 8, 10, 11])).tolist() == [0, 1, 1, -1]

    compact_members, offsets = table.compact()
    assert offsets.tolist() == [0, 1, 4] and sorted(compact_members[1:].tolist()) == [8, 9, 10]


def test_save_and_load_round_trip_and_refuse_a_mismatched_graph(tmp_path: Path) -> None:
    digests = row_digests(np.array([[1, 0], [0, 1]], np.float32))
    table = GroupTable(np.array([7, 8, 9], np.int64), np.array([0, 2, 3], np.int64), digests)
    path = tmp_path / "groups.npz"
    table.save(path)
    loaded = GroupTable.load(path, graph_elements=2)
    assert members(loaded, 0) == [7, 8] and members(loaded, 1) == [9]
    np.testing.assert_array_equal(loaded.digests[:2], digests)
    with pytest.raises(ValueError, match="corrupt hnsw groups"):
        GroupTable.load(path, graph_elements=3)
