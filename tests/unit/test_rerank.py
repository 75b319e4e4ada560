"""The gateway's re-rank: the genre cap, the fill-in of skipped items, the unseen filter."""

import numpy as np

from wren.core.rerank import MAX_GENRE_SHARE, diversify, unseen

GENRES = [["Drama"], ["Drama"], ["Drama", "War"], ["Comedy"], ["Drama"], ["Comedy", "Drama"], ["Horror"]]


def test_cap_skips_a_genre_once_it_fills_its_share_and_keeps_order_otherwise():
    # k=4, share 0.5 -> at most 2 Drama items: positions 0, 1 taken, 2 and 4 and 5 skipped (Drama full)
    assert diversify(range(7), GENRES, 4, 0.5) == [0, 1, 3, 6]


def test_skipped_items_fill_a_short_list_in_their_original_order():
    # cap ceil(0.3 * 6) = 2 Drama: 0, 1, Comedy 3, Horror 6; the list is short, so 2 and 4 refill it in order
    assert diversify(range(7), GENRES, 6, 0.3) == [0, 1, 3, 6, 2, 4]


def test_share_one_is_plain_top_k():
    assert diversify([6, 5, 4, 3, 2, 1, 0], GENRES, 3, 1.0) == [6, 5, 4]


def test_default_cap_allows_seven_of_ten_from_one_genre():
    genres = [["Drama"]] * 9 + [["Comedy"]] * 3
    chosen = diversify(range(12), genres, 10, MAX_GENRE_SHARE)
    assert chosen == [0, 1, 2, 3, 4, 5, 6, 9, 10, 11]


def test_unseen_masks_rated_items():
    assert unseen(np.array([5, 7, 9]), np.array([7])).tolist() == [True, False, True]
