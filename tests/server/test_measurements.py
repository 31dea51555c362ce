"""Posting measurements, validation, idempotency, the LUT value and lookups (SQLite and PostgreSQL)."""

from __future__ import annotations

import statistics

from tests.server.helpers import TARGET, batch, conv, item


def test_post_then_lookup_with_explicit_missing(api) -> None:
    a, b, never = conv(16), conv(24), conv(32)
    out = api.post("/measurements", batch([item(a, 1.5), item(b, 2.5)]))
    assert out["accepted"] == 2 and out["duplicates"] == 0 and out["rejected"] == []
    assert out["lut_version"] == 1
    look = api.post("/lookup", {"target": TARGET, "keys": [a.key, b.key, never.key]})
    assert look["values"][a.key]["value_ms"] == 1.5
    assert look["values"][b.key]["n_runs"] == 1
    assert look["missing"] == [never.key]
    assert never.key not in look["values"]
    assert look["lut_version"] == 1
    unknown = api.post("/lookup", {"target": "orin/tensorrt/fp16", "keys": [a.key]})
    assert unknown["values"] == {} and unknown["missing"] == [a.key]


def test_repost_same_run_changes_nothing(api) -> None:
    a, b = conv(16), conv(24)
    body = batch([item(a, 1.0), item(b, 2.0)])
    first = api.post("/measurements", body)
    again = api.post("/measurements", body)
    assert first["accepted"] == 2
    assert again["accepted"] == 0 and again["duplicates"] == 2
    assert again["lut_version"] == first["lut_version"]
    v = api.post("/lookup", {"target": TARGET, "keys": [a.key]})["values"][a.key]
    assert v["n_runs"] == 1
    doc = api.get("/export", target=TARGET)
    assert sum(len(e["measurements"]) for e in doc["targets"][0]["entries"]) == 2


def test_value_is_median_of_run_medians_with_spread(api) -> None:
    a = conv(16)
    runs = [1.0, 1.2, 3.0]
    for i, med in enumerate(runs):
        api.post("/measurements", batch([item(a, med)], device="xavier-01" if i < 2 else "xavier-01"))
    v = api.post("/lookup", {"target": TARGET, "keys": [a.key]})["values"][a.key]
    assert v["value_ms"] == statistics.median(runs)
    assert v["n_runs"] == 3
    assert abs(v["spread_pct"] - (3.0 - 1.0) / 1.2 * 100) < 1e-9
    p90 = api.post("/lookup", {"target": TARGET, "keys": [a.key], "metric": "p90_ms"})["values"][a.key]
    assert p90["value_ms"] == statistics.median([m * 1.1 for m in runs])


def test_partial_acceptance_names_item_and_reason(api) -> None:
    good, bad_key = conv(16), conv(24)
    wrong_key = item(bad_key)
    wrong_key["op"]["key"] = conv(40).key
    items = [
        item(good),
        item(conv(20), -1.0, std_ms=0.1),  # negative time
        item(conv(21), 1.0, p90_ms=0.5),  # p90 below median
        item(conv(22), 1.0, n=0),  # no samples
        wrong_key,
        {"op": "not an op"},
        item(conv(23), 1e9),  # absurd time
    ]
    out = api.post("/measurements", batch(items))
    assert out["accepted"] == 1
    rej = {r["index"]: r for r in out["rejected"]}
    assert sorted(rej) == [1, 2, 3, 4, 5, 6]
    assert "median_ms" in rej[1]["reason"] and "positive" in rej[1]["reason"]
    assert rej[1]["key"] == conv(20).key
    assert "out of order" in rej[2]["reason"]
    assert "stats.n" in rej[3]["reason"]
    assert "does not match its spec" in rej[4]["reason"]
    assert rej[5]["key"] is None
    assert "outside" in rej[6]["reason"]
    # nothing accepted is lost
    assert api.post("/lookup", {"target": TARGET, "keys": [good.key]})["missing"] == []


def test_batch_level_errors_are_422(api) -> None:
    body = batch([item(conv(16))])
    body["target"] = {"device": "Xavier!", "backend": "tensorrt"}
    r = api.c.post("/api/v1/measurements", json=body, headers=api.agent)
    assert r.status_code == 422
    assert "target" in r.text
    assert api.c.post("/api/v1/measurements", json={"nope": 1}, headers=api.agent).status_code == 422


def test_op_batch_must_match_target_batch(api) -> None:
    spec = conv(16).replace(batch=4)
    out = api.post("/measurements", batch([item(spec)]))
    assert out["accepted"] == 0 and "batch" in out["rejected"][0]["reason"]


def test_device_fingerprint_change_is_visible(api) -> None:
    first = api.post("/devices", {"name": "xavier-01", "device_class": "xavier", "fingerprint": {"jetpack": "5.1"}})
    same = api.post("/devices", {"name": "xavier-01", "device_class": "xavier", "fingerprint": {"jetpack": "5.1"}})
    new = api.post("/devices", {"name": "xavier-01", "device_class": "xavier", "fingerprint": {"jetpack": "5.1.2"}})
    assert first["changed"] is False and first["previous_digest"] is None
    assert same["changed"] is False and same["previous_digest"] == first["fingerprint_digest"]
    assert new["changed"] is True and new["previous_digest"] == first["fingerprint_digest"]
    devs = api.get("/devices")
    assert [h["digest"] for h in devs[0]["history"]] == [first["fingerprint_digest"], new["fingerprint_digest"]]


def test_targets_list(api) -> None:
    api.post("/measurements", batch([item(conv(16)), item(conv(24))]))
    ts = api.get("/targets")
    assert ts == [{"id": TARGET, "target": ts[0]["target"], "lut_version": 1, "ops_measured": 2}]
    assert ts[0]["target"]["precision"] == "fp16"
