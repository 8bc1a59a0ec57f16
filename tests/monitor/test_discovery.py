from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policylab.errors import InputError
from policylab.monitor.clusters import class_tfidf, cluster_vectors
from policylab.monitor.drift import drift_report, parse_duration
from policylab.monitor.propose import category_id_from_terms, draft_version, propose_category
from policylab.policy.diff import diff_policies
from policylab.policy.loader import load_policy
from policylab.policy.schema import DriftAlerts
from policylab.policy.writer import dump_policy_yaml


def test_class_tfidf_by_hand() -> None:
    # Two classes. Counts after stop words (unigrams only):
    #   class 0: casino 2, odds 1      (3 words)   class 1: bread 2, odds 1   (3 words)
    # A = 3; f(casino) = 2, f(odds) = 2, f(bread) = 2.
    # W(casino, 0) = 2/3 · log(1 + 3/2); W(odds, 0) = 1/3 · log(1 + 3/2).
    docs = ["casino casino odds", "bread bread odds"]
    out = class_tfidf(docs, ngram_range=(1, 1))
    assert out[0][0][0] == "casino"
    assert out[0][0][1] == pytest.approx(2 / 3 * math.log(2.5))
    assert dict(out[0])["odds"] == pytest.approx(1 / 3 * math.log(2.5))
    assert out[1][0][0] == "bread"
    # A term frequent everywhere weighs less than one distinctive to its class.
    out = class_tfidf(["bet bet odds", "odds odds odds soup", "odds soup"], ngram_range=(1, 1))
    assert out[0][0][0] == "bet"


def test_clustering_separates_two_blobs() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal([1, 0, 0], 0.02, size=(30, 3))
    b = rng.normal([0, 1, 0], 0.02, size=(30, 3))
    vectors = np.vstack([a, b]).astype(np.float32)
    labels = cluster_vectors(vectors, method="hdbscan", min_size=10)
    assert len(set(labels[:30])) == 1
    assert len(set(labels[30:])) == 1
    assert labels[0] != labels[-1]
    kmeans = cluster_vectors(vectors, method="kmeans", k=2)
    assert len(set(kmeans[:30])) == 1
    assert kmeans[0] != kmeans[-1]


def test_propose_writes_a_loadable_draft_with_a_diff(tmp_path: Path, example_pack: Path) -> None:
    policy = load_policy(example_pack).policy
    assert (
        category_id_from_terms(["sports betting", "odds"], ["SPORTS_BETTING"]) == "SPORTS_BETTING_2"
    )
    assert category_id_from_terms(["3d printing"], []) == "NEW_3D_PRINTING"
    assert draft_version("1.4.2") == "1.5.0-draft"
    draft, cid = propose_category(
        policy,
        terms=["betting", "casino", "odds"],
        examples=["Give me a betting system", "Beat the casino at roulette"],
        cluster_label="betting, casino, odds",
        size=42,
    )
    assert cid == "BETTING"
    path = dump_policy_yaml(draft, tmp_path / "draft.yaml")
    loaded = load_policy(path).policy
    assert loaded == draft
    diff = diff_policies(policy, loaded)
    added = {(c.object, c.id) for c in diff.changes if c.kind == "added"}
    assert ("category", "BETTING") in added
    assert ("example", "betting-01") in added
    assert ("example", "betting-02") in added
    assert any(c.object == "header" and c.field == "version" for c in diff.changes)


def test_monitoring_section_is_optional_and_keeps_old_hashes(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text(
        "id: t\nversion: 1.0.0\ntitle: T\nscope: S\nowners: [{name: A}]\n", encoding="utf-8"
    )
    policy = load_policy(bare).policy
    assert policy.monitoring is None
    # The hash without a monitoring section is the hash of the content without that key.
    import hashlib

    import orjson

    data = policy.model_dump(mode="json")
    data.pop("monitoring")
    expected = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert policy.content_hash == f"sha256:{expected}"
    root = tmp_path / "p.yaml"
    root.write_text(
        "id: t\nversion: 1.0.0\ntitle: T\nscope: S\nowners: [{name: A}]\n"
        "monitoring:\n  drift: {window: 12h, js_threshold: 0.2}\n"
        "  rates: [{category: CYB, metric: violation, max: 0.01}]\n",
        encoding="utf-8",
    )
    loaded = load_policy(root).policy
    assert loaded.monitoring is not None
    assert loaded.monitoring.drift.window == "12h"
    assert loaded.monitoring.drift.reference == "7d"
    assert loaded.monitoring.rates[0].metric == "violation"
    root.write_text(
        "id: t\nversion: 1.0.0\ntitle: T\nscope: S\nowners: [{name: A}]\n"
        "monitoring:\n  drift: {window: 1 day}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"monitoring\.drift\.window"):
        load_policy(root)


def test_drift_report_on_a_hand_made_frame() -> None:
    start = pd.Timestamp("2025-01-01", tz="UTC")
    rows = []
    n = 0
    for day in range(10):
        for i in range(100):
            shifted = day >= 8
            cat = "A" if (i < (50 if shifted else 20)) else "B"
            rows.append(
                {
                    "conversation_id": n,
                    "timestamp": start + pd.Timedelta(days=day, minutes=i),
                    "category": cat,
                    "behavior": "comply",
                    "violation": False,
                }
            )
            n += 1
    frame = pd.DataFrame(rows)
    report = drift_report(frame, settings=DriftAlerts(window="1d", reference="3d", min_window=50))
    assert len(report.windows) == 7
    assert report.skipped == 0
    active = {(a.kind, a.subject): a for a in report.active}
    chart = active[("control_chart", "A")]
    assert chart.since == dt.datetime(2025, 1, 9, tzinfo=dt.UTC)
    assert chart.windows == 2
    assert ("category_drift", "categories") in active
    assert ("behavior_drift", "behaviors") not in active
    assert not [a for a in report.alerts if not a.active]
    assert parse_duration("2w") == dt.timedelta(days=14)
