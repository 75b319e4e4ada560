"""Nearline and retrain units without sockets: decay arithmetic, the event log files, their loader, the gate."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.cleaning import DUPLICATE_RATINGS, UNKNOWN_ITEM_RATINGS
from pipeline.data.dataset import Dataset
from pipeline.data.errors import DataValidationError
from pipeline.events import CUT_SHORT_EVENTS, DUPLICATE_EVENTS, NOT_RATING_EVENTS, load_event_log, merge_events
from pipeline.retrain import decide
from services.common.trend import Decay
from services.nearline.apply import PoisonEvent, StreamEvent, parse_entry
from services.nearline.eventlog import EventLog
from wren.core.manifest import EvaluationSplit, Manifest
from wren.core.types import Event


def test_decayed_counts_halve_every_half_life_and_log_sums_add() -> None:
    decay = Decay(100.0)
    score = math.log(math.exp(decay.term(1000)) + math.exp(decay.term(1000)))  # two events at t=1000
    assert decay.counts(np.array([score]), 1000)[0] == pytest.approx(2.0)
    assert decay.counts(np.array([score]), 1100)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        Decay(0)


def test_stream_entries_are_validated_like_ingestion() -> None:
    good = parse_entry(
        "1700000000123-0", {"user": "3", "item": "9", "type": "rating", "rating": "4.5", "ts": "7", "id": "abc"}
    )
    assert good.event == Event(3, 9, "rating", 4.5, 7, "abc") and good.key == "abc"
    assert good.enqueued_seconds == pytest.approx(1700000000.123)
    assert parse_entry("5-1", {"user": "3", "item": "9", "type": "view", "rating": "", "ts": "7"}).key == "stream:5-1"
    for fields in (
        {"user": "x", "item": "9", "type": "click", "ts": "1"},
        {"user": "3", "item": "9", "type": "rating", "rating": "9", "ts": "1"},
        {"user": "3", "item": "9", "type": "like", "ts": "1"},
        {"item": "9", "type": "click", "ts": "1"},
        None,
    ):
        with pytest.raises(PoisonEvent):
            parse_entry("1-0", fields)


def logged(
    event_id: str, user: int, item: int, kind: str = "rating", rating: float | None = 4.0, ts: int = 2_000_000_000
) -> StreamEvent:
    return StreamEvent("1-0", Event(user, item, kind, rating, ts, event_id))


def test_event_log_rotates_by_size_and_age(tmp_path: Path) -> None:
    now = [1000.0]
    log = EventLog(tmp_path, "w1", max_bytes=200, max_seconds=60, clock=lambda: now[0])
    log.append([logged("a", 1, 1), logged("b", 1, 2)])
    first = log.path
    log.append([logged("c", 1, 3)])  # over 200 bytes by now: a new file
    assert log.path != first
    second = log.path
    now[0] += 61
    log.append([logged("d", 1, 4)])
    assert log.path not in (first, second)
    log.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 3 and all(name.name.startswith("events-") and "-w1-" in name.name for name in files)
    ids = [json.loads(line)["event_id"] for path in files for line in path.read_text().splitlines()]
    assert sorted(ids) == ["a", "b", "c", "d"]


def dataset() -> Dataset:
    ratings = pd.DataFrame(
        {"user_id": [1, 1, 2], "item_id": [10, 11, 10], "rating": [3.0, 4.0, 5.0], "timestamp": [100, 200, 300]}
    ).astype({"rating": "float32"})
    items = pd.DataFrame({"item_id": [10, 11, 12], "title": ["a", "b", "c"], "genres": [(), (), ()], "year": [0, 0, 0]})
    tags = pd.DataFrame({"user_id": [], "item_id": [], "tag": [], "timestamp": []})
    return Dataset("csv", ratings, items, tags, files=[Path("ratings.csv")], dropped=Counter())


def test_logged_events_merge_with_the_loaders_rules_and_counts(tmp_path: Path) -> None:
    log = EventLog(tmp_path, "w1")
    log.append(
        [
            logged("e1", 3, 12),
            logged("e1", 3, 12),
            logged("e2", 1, 10, rating=1.0, ts=500),
            logged("e3", 4, 99),
            logged("e4", 4, 11, kind="click", rating=None),
        ]
    )
    log.close()
    with open(next(tmp_path.glob("*.jsonl")), "a") as handle:
        handle.write('{"event_id": "e5", "user_')  # a writer killed mid-line
    merged = merge_events(dataset(), tmp_path)
    assert merged.dropped == Counter(
        {DUPLICATE_EVENTS: 1, NOT_RATING_EVENTS: 1, CUT_SHORT_EVENTS: 1, UNKNOWN_ITEM_RATINGS: 1, DUPLICATE_RATINGS: 1}
    )
    rows = {(r.user_id, r.item_id): r.rating for r in merged.ratings.itertuples()}
    assert rows == {(1, 10): 1.0, (1, 11): 4.0, (2, 10): 5.0, (3, 12): 4.0}  # the later rating of (1, 10) wins
    assert len(merged.files) == 2


def test_a_bad_logged_event_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "events-x.jsonl").write_text(
        '{"event_id": "a", "user_id": 1, "item_id": 2, "type": "rating", "rating": 4, "timestamp": 1}\nnot json\n{}\n'
    )
    with pytest.raises(DataValidationError, match="events-x.jsonl line 2"):
        load_event_log(tmp_path)
    (tmp_path / "events-x.jsonl").write_text(
        '{"event_id": "a", "user_id": 1, "item_id": 2, "type": "rating", "rating": 7, "timestamp": 1}\n'
    )
    with pytest.raises(DataValidationError, match="line 1: rating 7 out of range"):
        load_event_log(tmp_path)
    with pytest.raises(DataValidationError, match="not a directory"):
        load_event_log(tmp_path / "missing")


def manifest(version: str, ndcg: float, protocol: str = "time") -> Manifest:
    """Only the parts the gate reads (model_construct skips validating the rest)."""
    return Manifest.model_construct(
        version=version,
        evaluation=EvaluationSplit.model_construct(protocol=protocol),
        metrics={"served": {"k": 10, "systems": {"wren": {"ndcg_at_10": ndcg}}}},
    )


def test_the_gate_publishes_within_the_tolerance_and_refuses_beyond_it() -> None:
    assert decide(manifest("new", 0.30), manifest("old", 0.30), 0.01).publish
    assert decide(manifest("new", 0.295), manifest("old", 0.30), 0.01).publish
    refused = decide(manifest("new", 0.28), manifest("old", 0.30), 0.01)
    assert not refused.publish and "worse than live 0.3000 beyond tolerance" in refused.reason
    assert refused.live_version == "old" and refused.candidate_ndcg == 0.28
    assert decide(manifest("new", 0.1), None, 0.01).publish
    assert not decide(manifest("new", 0.9, "random"), manifest("old", 0.1), 0.01).publish
    with pytest.raises(ValueError):
        decide(manifest("new", 0.3), None, -1)


def test_a_bad_event_id_is_the_clients_error() -> None:
    from services.common.validation import validate_event
    from services.gateway.http import parse_event
    from wren.core.errors import InvalidArgument

    assert parse_event({"user_id": 1, "item_id": 2, "type": "click", "event_id": "abc-1"}).event_id == "abc-1"
    with pytest.raises(InvalidArgument, match="event_id must be a string"):
        parse_event({"user_id": 1, "item_id": 2, "type": "click", "event_id": 5})
    for bad in ("x" * 65, "has space", "ünï"):
        with pytest.raises(InvalidArgument, match="event_id must be 1 to 64 characters"):
            validate_event(Event(1, 2, "click", None, 0, bad))
    validate_event(Event(1, 2, "click", None, 0, ""))  # the gateway fills it in
