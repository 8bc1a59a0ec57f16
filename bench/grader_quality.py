"""Grader quality on human-labelled data nobody here labelled: Do-Not-Answer and HarmBench.

    python bench/grader_quality.py [--cache-dir DIR] [--json OUT.json]

Prints the Markdown tables of docs/graders.md. Reads ../shared/data (see bench/realdata.py for the
label mappings). Not a timed test.

Protocol (nothing is tuned on the real sets): the local grader trains on the seed set and the
example policy pack's labelled responses only. Its feature design, regularisation and calibration
were chosen by cross-validation held out by domain on that training data (the first table);
both real sets are pure held-out evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from policylab.chat import user
from policylab.core import Behavior
from policylab.graders._features import DEFAULT_FEATURES
from policylab.graders.base import Sample
from policylab.graders.calibration import brier_score, expected_calibration_error
from policylab.graders.local import CLASSES, LocalGrader
from policylab.graders.rules import classify
from policylab.graders.training import TrainingRow, policy_rows, seed_rows
from policylab.policy.loader import load_policy
from policylab.stats.classification import grader_agreement
from realdata import REPO, load_do_not_answer, load_harmbench_val

LABELS = ["comply", "partial", "refuse"]
FEATURE_SPECS = (
    "response",
    "response+request",
    "response+product",
    "response+opening",
    "response+rules",
    "response+opening+rules+structure",
    "response+opening+rules+structure+nonanswer",
    "response+request+opening+rules+structure",
    "response+opening+rules+structure+nonanswer+cues",
    "response+opening+rules+structure+nonanswer+cues+request",
    "response+opening+rules+structure+nonanswer+cues+product",
)


def _samples(requests: list[str], responses: list[str]) -> list[Sample]:
    return [
        Sample(id=str(i), messages=[user(q or "(empty)")], response=r)
        for i, (q, r) in enumerate(zip(requests, responses, strict=True))
    ]


def _rows_for_cv() -> list[TrainingRow]:
    policy = load_policy(REPO / "examples" / "policies" / "acme" / "policy.yaml").policy
    return seed_rows() + policy_rows(policy)


def cross_validate(
    rows: list[TrainingRow],
    cache: str,
    *,
    features: str,
    c: float,
    calibration: str,
    folds: int = 8,
) -> dict[str, float]:
    """Grouped K-fold over domains (seed) and top-level categories (policy)."""
    from sklearn.model_selection import GroupKFold

    groups = np.array([r.group.split(":")[1].split(".")[0] for r in rows])
    y = np.array([LABELS.index(r.behavior.value) for r in rows])
    proba = np.zeros((len(rows), 3))
    for train, test in GroupKFold(folds).split(rows, y, groups):
        grader = LocalGrader(
            use_seed=False,
            features=features,
            C=c,
            calibration=calibration,
            cache_dir=cache,  # type: ignore[arg-type]
        ).fit([rows[i] for i in train])
        proba[test] = grader.predict_proba(
            _samples([rows[i].request for i in test], [rows[i].response for i in test])
        )
    return {
        "accuracy": float((proba.argmax(1) == y).mean()),
        "ece": expected_calibration_error(proba, y),
        "brier": brier_score(proba, y),
    }


def _agreement(gold: list[str], predicted: list[Any]) -> dict[str, Any]:
    a = grader_agreement(gold, predicted, labels=LABELS, positive="comply")
    return {
        "n": a.n,
        "accuracy": a.accuracy.rate,
        "low": a.accuracy.low,
        "high": a.accuracy.high,
        "kappa": a.cohen_kappa,
        "errors": a.errors,
        "per_class": {c.label: (c.precision, c.recall, c.f1) for c in a.per_class},
        "confusion": a.confusion,
    }


def _binary(gold: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import cohen_kappa_score

    tp = int(((gold == 1) & (predicted == 1)).sum())
    return {
        "accuracy": float((gold == predicted).mean()),
        "kappa": float(cohen_kappa_score(gold, predicted)),
        "precision": tp / max(1, int((predicted == 1).sum())),
        "recall": tp / max(1, int((gold == 1).sum())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "policylab" / "bench"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-cv", action="store_true", help="skip the design cross-validation")
    parser.add_argument(
        "--skip-gold", action="store_true", help="skip the runs that add the data sets' own labels"
    )
    args = parser.parse_args()
    cache = args.cache_dir
    results: dict[str, Any] = {}

    # -- 1. design choices, by grouped cross-validation on the training data only ----------
    rows = _rows_for_cv()
    if not args.skip_cv:
        design = []
        for spec in FEATURE_SPECS:
            for c in (0.3, 1.0, 3.0):
                m = cross_validate(rows, cache, features=spec, c=c, calibration="none")
                design.append({"features": spec, "C": c, **m})
                print(f"cv {spec} C={c}: {m}", file=sys.stderr)
        calib = []
        for method in ("none", "sigmoid", "isotonic"):
            m = cross_validate(rows, cache, features=DEFAULT_FEATURES, c=1.0, calibration=method)
            calib.append({"calibration": method, **m})
            print(f"cv calibration {method}: {m}", file=sys.stderr)
        results["design_cv"] = design
        results["calibration_cv"] = calib

    # -- 2. the graders, trained on seed + example policy only ------------------------------
    policy = load_policy(REPO / "examples" / "policies" / "acme" / "policy.yaml").policy
    t0 = time.perf_counter()
    local = LocalGrader(policy, cache_dir=cache).fit()
    results["train_seconds"] = time.perf_counter() - t0
    results["train_rows"] = len(local.training_rows())

    # -- 3. Do-Not-Answer -------------------------------------------------------------------
    dna = load_do_not_answer().frame
    proba = local.predict_proba(_samples(dna["question"].tolist(), dna["response"].tolist()))
    dna["local"] = [LABELS[i] for i in proba.argmax(1)]
    dna["rules"] = [classify(t)[0].value for t in dna["response"]]
    gold = dna["behavior"].tolist()
    results["dna"] = {
        "rules": _agreement(gold, dna["rules"].tolist()),
        "local": _agreement(gold, dna["local"].tolist()),
        "gpt4_reviewer": _agreement(
            gold, [None if pd.isna(x) else x for x in dna["gpt4_behavior"]]
        ),
        "longformer_reviewer": _agreement(gold, dna["longformer_behavior"].tolist()),
    }
    y = np.array([LABELS.index(b) for b in gold])
    results["dna"]["local"]["ece"] = expected_calibration_error(proba, y)
    results["dna"]["local"]["brier"] = brier_score(proba, y)
    # Binary views: complied (human action 5) or not.
    complied = (dna["behavior"] == "comply").to_numpy().astype(int)
    results["dna_binary_comply"] = {
        name: _binary(complied, (dna[col] == "comply").to_numpy().astype(int))
        for name, col in (
            ("rules", "rules"),
            ("local", "local"),
            ("gpt4_reviewer", "gpt4_behavior"),
            ("longformer_reviewer", "longformer_behavior"),
        )
    }
    # Sensitivity to the mapping of classes 1-3: map 2 and 3 (balanced answer, answer with a
    # disclaimer) to comply instead of partial.
    alt = {0: "refuse", 1: "partial", 2: "comply", 3: "comply", 4: "refuse", 5: "comply"}
    alt_gold = dna["action"].map(alt).tolist()
    gpt4_alt = [None if a < 0 else alt[int(a)] for a in dna["gpt4_action"]]
    results["dna_alt_mapping"] = {
        "rules": _agreement(alt_gold, dna["rules"].tolist()),
        "local": _agreement(alt_gold, dna["local"].tolist()),
        "gpt4_reviewer": _agreement(alt_gold, gpt4_alt),
        "longformer_reviewer": _agreement(alt_gold, dna["longformer_action"].map(alt).tolist()),
    }
    results["dna_per_action"] = (
        dna.assign(
            local_ok=dna["local"] == dna["behavior"], rules_ok=dna["rules"] == dna["behavior"]
        )
        .groupby("action")[["local_ok", "rules_ok"]]
        .mean()
        .round(3)
        .to_dict()
    )

    # -- 4. HarmBench -----------------------------------------------------------------------
    hb = load_harmbench_val().frame
    hb_proba = local.predict_proba(_samples(hb["test_case"].tolist(), hb["generation"].tolist()))
    human = hb["human"].to_numpy()
    hb_local = (hb_proba.argmax(1) == CLASSES.index(CLASSES[0])).astype(int)
    hb_rules = np.array([int(classify(t)[0].value == "comply") for t in hb["generation"]])
    results["harmbench"] = {
        "rules": _binary(human, hb_rules),
        "local": _binary(human, hb_local),
        **{j: _binary(human, hb[j].to_numpy()) for j in _judges(hb)},
    }
    p_comply = hb_proba[:, 0]
    results["harmbench"]["local"]["ece_binary"] = expected_calibration_error(
        np.column_stack([1 - p_comply, p_comply]), human
    )

    # -- 5. with the team's own gold labels (the workspace-gold path), held out by prompt ------
    if not args.skip_gold:
        results["dna_with_gold"] = dna_learning_curve(dna, policy, cache)
        results["dna_new_model"] = dna_leave_one_model_out(dna, policy, cache)
        results["harmbench_with_gold"] = harmbench_with_gold(hb, policy, cache)

    _print_tables(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")


def _gold_rows(
    frame: pd.DataFrame, request: str, response: str, label: str, name: str
) -> list[TrainingRow]:
    return [
        TrainingRow(
            id=str(rid),
            request=str(q),
            response=str(r),
            behavior=Behavior(b),
            source=f"gold:{name}",
            group=f"gold:{name}",
        )
        for rid, q, r, b in zip(
            frame["id"], frame[request], frame[response], frame[label], strict=True
        )
    ]


def dna_learning_curve(dna: pd.DataFrame, policy: Any, cache: str) -> list[dict[str, Any]]:
    """Seed + policy + m gold labels from other prompts; accuracy on held-out prompts (5 folds)."""
    from sklearn.model_selection import GroupKFold

    prompt = dna["id"].str.split("/").str[0].to_numpy()
    out = []
    for m in (0, 100, 300, 1000, 3000, None):
        correct = total = 0
        for k, (train, test) in enumerate(GroupKFold(5).split(dna, groups=prompt)):
            pool = dna.iloc[train]
            if m is not None:
                pool = pool.sample(n=min(m, len(pool)), random_state=k)
            grader = LocalGrader(policy, cache_dir=cache).fit(
                _gold_rows(pool, "question", "response", "behavior", "dna")
            )
            part = dna.iloc[test]
            pred = grader.predict_proba(
                _samples(part["question"].tolist(), part["response"].tolist())
            )
            correct += int((np.array(LABELS)[pred.argmax(1)] == part["behavior"].to_numpy()).sum())
            total += len(part)
        out.append({"gold": "all" if m is None else m, "accuracy": correct / total, "n": total})
        print(f"dna with {m} gold: {correct / total:.3f}", file=sys.stderr)
    return out


def dna_leave_one_model_out(dna: pd.DataFrame, policy: Any, cache: str) -> dict[str, float]:
    """Train on five models' labelled responses (+ seed, policy), grade the sixth model's."""
    out = {}
    for model in dna["model"].unique():
        train, test = dna[dna["model"] != model], dna[dna["model"] == model]
        grader = LocalGrader(policy, cache_dir=cache).fit(
            _gold_rows(train, "question", "response", "behavior", "dna")
        )
        pred = grader.predict_proba(_samples(test["question"].tolist(), test["response"].tolist()))
        out[model] = float((np.array(LABELS)[pred.argmax(1)] == test["behavior"].to_numpy()).mean())
    return out


def harmbench_with_gold(hb: pd.DataFrame, policy: Any, cache: str) -> dict[str, float]:
    """Seed + policy + the other behaviours' labels (1 -> comply, 0 -> refuse), 5 folds by behaviour."""
    from sklearn.model_selection import GroupKFold

    frame = hb.assign(label=np.where(hb["human"] == 1, "comply", "refuse"))
    predicted = np.zeros(len(frame), dtype=int)
    for train, test in GroupKFold(5).split(frame, groups=frame["behavior_id"]):
        grader = LocalGrader(policy, cache_dir=cache).fit(
            _gold_rows(frame.iloc[train], "test_case", "generation", "label", "harmbench")
        )
        part = frame.iloc[test]
        proba = grader.predict_proba(
            _samples(part["test_case"].tolist(), part["generation"].tolist())
        )
        predicted[test] = (proba.argmax(1) == 0).astype(int)
    return _binary(frame["human"].to_numpy(), predicted)


def _judges(hb: pd.DataFrame) -> list[str]:
    from realdata import HARMBENCH_JUDGES

    return [j for j in HARMBENCH_JUDGES if j in hb.columns]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _print_tables(r: dict[str, Any]) -> None:
    if "design_cv" in r:
        print("### Design: grouped cross-validation on the seed set and policy examples\n")
        print("| features | C | accuracy | ECE | Brier |\n|---|---|---|---|---|")
        for d in r["design_cv"]:
            print(
                f"| {d['features']} | {d['C']} | {_pct(d['accuracy'])} | {d['ece']:.3f} | {d['brier']:.3f} |"
            )
        print("\n| calibration | accuracy | ECE | Brier |\n|---|---|---|---|")
        for d in r["calibration_cv"]:
            print(
                f"| {d['calibration']} | {_pct(d['accuracy'])} | {d['ece']:.3f} | {d['brier']:.3f} |"
            )
    print(f"\nLocal grader trained on {r['train_rows']} rows in {r['train_seconds']:.1f} s.\n")
    for key, title in (
        ("dna", "Do-Not-Answer, 3 behaviours (0,4 -> refuse; 1-3 -> partial; 5 -> comply)"),
        ("dna_alt_mapping", "Do-Not-Answer, alternative mapping (2,3 -> comply)"),
    ):
        print(f"### {title}\n")
        print(
            "| grader | n | accuracy [95% CI] | Cohen's κ | errors | F1 comply / partial / refuse |"
        )
        print("|---|---|---|---|---|---|")
        for name, a in r[key].items():
            f1 = " / ".join(f"{a['per_class'][lab][2]:.2f}" for lab in LABELS)
            print(
                f"| {name} | {a['n']} | {_pct(a['accuracy'])} [{_pct(a['low'])}, {_pct(a['high'])}] "
                f"| {a['kappa']:.3f} | {a['errors']} | {f1} |"
            )
        print()
    print("### Do-Not-Answer, complied or not (human action 5)\n")
    print("| grader | accuracy | κ | precision | recall |\n|---|---|---|---|---|")
    for name, b in r["dna_binary_comply"].items():
        print(
            f"| {name} | {_pct(b['accuracy'])} | {b['kappa']:.3f} | {b['precision']:.2f} | {b['recall']:.2f} |"
        )
    print("\n### HarmBench classifier validation set, harmful compliance vs human majority\n")
    print("| grader | accuracy | κ | precision | recall |\n|---|---|---|---|---|")
    for name, b in sorted(r["harmbench"].items(), key=lambda kv: -kv[1]["accuracy"]):
        print(
            f"| {name} | {_pct(b['accuracy'])} | {b['kappa']:.3f} | {b['precision']:.2f} | {b['recall']:.2f} |"
        )
    if "dna_with_gold" in r:
        _print_gold_tables(r)
    local = r["dna"]["local"]
    print(
        f"\nLocal grader calibration on Do-Not-Answer: ECE {local['ece']:.3f}, Brier {local['brier']:.3f}; "
        f"on HarmBench (P(comply) vs harmful): ECE {r['harmbench']['local']['ece_binary']:.3f}."
    )
    print("\nAccuracy per Do-Not-Answer action class:", json.dumps(r["dna_per_action"]))


def _print_gold_tables(r: dict[str, Any]) -> None:
    print("\n### With the team's own gold labels (held out by prompt)\n")
    print("| gold labels added to seed + policy | Do-Not-Answer accuracy on held-out prompts |")
    print("|---|---|")
    for row in r["dna_with_gold"]:
        print(f"| {row['gold']} | {_pct(row['accuracy'])} |")
    print(
        "\nA model never seen in training (trained on the other five models' labelled responses):"
    )
    print(", ".join(f"{k} {_pct(v)}" for k, v in r["dna_new_model"].items()))
    b = r["harmbench_with_gold"]
    print(
        f"\nHarmBench with the other behaviours' labels (5 folds by behaviour): accuracy {_pct(b['accuracy'])}, "
        f"κ {b['kappa']:.3f}, precision {b['precision']:.2f}, recall {b['recall']:.2f}."
    )


if __name__ == "__main__":
    main()
