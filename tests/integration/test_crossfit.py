"""Cross-fitted ranking rows: no fold's candidates come from recall models that saw that fold's labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.crossfit as crossfit
import pipeline.train as train_module
from pipeline.config import load_config
from pipeline.data.loaders import load_dataset
from services.inprocess import served_lists

KEY = ["user_id", "item_id", "timestamp"]


class Stop(Exception):
    """Raised where the test has seen what it needs: the rankers are not trained."""


def _keys(frame: pd.DataFrame) -> set[tuple[int, int, int]]:
    return set(map(tuple, frame[KEY].to_numpy(np.int64).tolist()))


@pytest.mark.parametrize("max_label_users", [0, 30])
def test_each_fold_is_recalled_by_models_fitted_without_its_labels(
    tiny_data: Path, tiny_config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_label_users: int
) -> None:
    """With a cap on the label users too: the other users' held-out ratings then reach every fold's fit."""
    fitted: list[set] = []
    recalled: list[tuple[int, set, set]] = []  # (fit call, held-out keys, held-out users)
    results = []
    real_fit, real_rows, real_crossfit = crossfit.fit_recall_models, crossfit.candidate_rows, train_module.crossfit_rows

    def spy_fit(ratings: pd.DataFrame, *args: object, **kwargs: object):
        fitted.append(_keys(ratings))
        return real_fit(ratings, *args, **kwargs)

    def spy_rows(*, held_out: pd.DataFrame, **kwargs: object):
        recalled.append((len(fitted) - 1, _keys(held_out), set(held_out["user_id"].tolist())))
        return real_rows(held_out=held_out, **kwargs)

    def spy_crossfit(history: pd.DataFrame, labels: pd.DataFrame, *args: object, **kwargs: object):
        results.append((history, labels, real_crossfit(history, labels, *args, **kwargs)))
        return results[-1][2]

    def stop(*args: object, **kwargs: object) -> None:
        raise Stop

    monkeypatch.setattr(crossfit, "fit_recall_models", spy_fit)
    monkeypatch.setattr(crossfit, "candidate_rows", spy_rows)
    monkeypatch.setattr(train_module, "crossfit_rows", spy_crossfit)
    monkeypatch.setattr(train_module, "train_rankers", stop)
    config = load_config(tiny_config_file)
    config = config.updated(ranking={"max_label_users": max_label_users})
    with pytest.raises(Stop):
        train_module.train(tiny_data, tmp_path / "out", config, served_lists, progress=False)

    ((history, labels, rows),) = results
    training_part = train_module.make_split(
        load_dataset(tiny_data).ratings, config.evaluation.protocol, config.evaluation.test_fraction, config.seed
    ).train
    assert _keys(history) | _keys(labels) == _keys(training_part) and not _keys(history) & _keys(labels)
    label_users = labels["user_id"].nunique()
    assert label_users == 30 if max_label_users else label_users > 30
    everything, label_keys = _keys(history) | _keys(labels), _keys(labels)
    assert len(fitted) == config.ranking.folds
    fold_labels: dict[int, set] = {}
    for fit_call, held, users in recalled:
        fold_labels.setdefault(fit_call, set()).update(held)
        assert not held & fitted[fit_call]  # the labels judged were never seen by the models that recalled
        every_label_of_these_users = {key for key in label_keys if key[0] in users}
        assert not every_label_of_these_users & fitted[fit_call]
    for fit_call, held in fold_labels.items():
        assert fitted[fit_call] == everything - held  # and the models saw everything else
    assert set(fold_labels) == set(range(config.ranking.folds))
    fit_users, valid_users = set(rows.fit.users.tolist()), set(rows.valid.users.tolist())
    assert fit_users and valid_users and not fit_users & valid_users
    assert np.all(np.diff(rows.fit.users) >= 0) and np.all(np.diff(rows.valid.users) >= 0)
    assert set(rows.proposals) == valid_users


def test_no_users_left_to_train_the_rankers_is_a_clear_error(
    tiny_data: Path, tiny_config_file: Path, tmp_path: Path
) -> None:
    config = load_config(tiny_config_file)
    config = config.updated(ranking={"validation_users": 1.0})
    with pytest.raises(ValueError, match="too few label users"):
        train_module.train(tiny_data, tmp_path / "out", config, served_lists, progress=False)
    assert not (tmp_path / "out" / "current").exists()
