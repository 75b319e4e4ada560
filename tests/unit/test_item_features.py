"""ItemFeatureTable: what ranking reads from its bundle equals what the feature tier serves for the same ids."""

from __future__ import annotations

import numpy as np

from services.feature.items import ItemCatalog
from wren.core.bundle import Bundle
from wren.core.item_features import ItemFeatureTable
from wren.core.model_inputs import ItemVocabulary


def test_gathered_rows_equal_the_feature_tiers_batch_and_the_vocabulary(tiny_bundle: Bundle) -> None:
    ids = tiny_bundle.items.ids
    request = np.array([ids[3], 999_999, ids[0], ids[-1], ids[3], -5], np.int64)
    rows = ItemFeatureTable(tiny_bundle).gather(request)
    served = ItemCatalog(tiny_bundle).batch(request)
    assert rows.known.tolist() == served.known.tolist() == [True, False, True, True, True, False]
    for name in ("dense", "genres", "embedding"):
        got, want = getattr(rows, name), getattr(served, name)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert not rows.dense[~rows.known].any() and not rows.embedding[~rows.known].any()
    np.testing.assert_array_equal(rows.index, ItemVocabulary(ids).index(request))
