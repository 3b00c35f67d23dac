"""Fairness audit of German credit risk scorers (issue 16): per-group metrics with bootstrap
intervals and counterfactual flip rates, for the default tabular scorer and the row-text path.

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 nice -n 5 python bench/fairness_risk.py

1. 80/20 stratified train/test split (seed 0) of the 1,000 applicants.
2. Two models fitted on the 800 train rows only, every column a feature (age and
   ``personal_status_and_sex`` included, as a new user would fit them): ``RiskScorer()``
   (tabular: LightGBM of depth 3 or 6, or an L2 logistic regression, chosen on 5 stratified
   folds of the train rows) and ``RiskScorer(representation="row-text")`` (the rows rendered as
   sentences, the default encoder all-MiniLM-L6-v2 frozen, a logistic head); the row-text
   model again with ``max_length=256``: the rendered row is about 200 tokens, so at the
   default 128 the encoder never reads the fields after token 128 (the numeric ones, age
   among them; ``TruncationWarning``).
3. :func:`dayzero.risk.fairness.fairness_audit` on the 200 test rows: approve the 70 % with
   the lowest PD (German credit's share of goods), sensitive attributes ``age`` (age in years,
   ``< 25`` / ``>= 25``), ``sex`` (the first word of ``personal_status_and_sex``) and
   ``personal_status_and_sex`` as it is (groups under 5 test rows left out); 1,000 percentile
   bootstrap resamples within groups, seed 0; the counterfactual test sets each applicant's
   value to the other group's (the band's median age, the group's most frequent status).

Writes ``bench/results/fairness_risk.json`` (each audit as
:meth:`FairnessAudit.to_dict <dayzero.risk.fairness.FairnessAudit.to_dict>`, plus the test AUC
and fit time of each model) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, save

NAME = "fairness_risk"
MODELS = {
    "tabular (RiskScorer())": {},
    'row-text (RiskScorer(representation="row-text"))': {"representation": "row-text"},
    # The rendered row is ~200 tokens: at the default 128 the encoder never reads the fields
    # after token 128 (age among them), so the audit is also run with every field read.
    "row-text, max_length=256": {"representation": "row-text", "max_length": 256},
}


def _sex(value: str) -> str:
    return str(value).split(":")[0].strip()


def run(n_resamples: int, seed: int) -> dict:
    from sklearn.model_selection import train_test_split

    from dayzero.datasets.german_credit import CATEGORICAL, NUMERIC, load_german_credit
    from dayzero.risk.fairness import Sensitive, fairness_audit
    from dayzero.risk.metrics import roc_auc
    from dayzero.risk.scorer import RiskScorer

    data = load_german_credit()
    X = data.X[[*CATEGORICAL, *NUMERIC]]
    X_train, X_test, y_train, y_test = train_test_split(
        X, data.y, test_size=0.2, stratify=data.y, random_state=seed
    )
    sensitive = [
        Sensitive("age_in_years", name="age", bins=[25]),
        Sensitive("personal_status_and_sex", name="sex", groups=_sex),
        Sensitive("personal_status_and_sex"),
    ]
    out = {}
    for label, params in MODELS.items():
        start = time.perf_counter()
        model = RiskScorer(random_state=seed, **params).fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings():
            # unknown categories in the test rows are scored as unknown; truncation: see above
            warnings.simplefilter("ignore")
            audit = fairness_audit(
                model,
                X_test,
                y_test,
                sensitive,
                approval_rate=0.7,
                n_resamples=n_resamples,
                random_state=0,
                data={"dataset": "german-credit", "split": "80/20 stratified, seed 0, test part"},
            )
            auc = roc_auc(np.asarray(y_test) == 1, model.predict_pd(X_test))
        out[label] = {
            "params": params,
            "describe": model.describe()["summary"],
            "truncation": getattr(model, "truncation_", None),
            "test_auc": auc,
            "fit_seconds": fit_seconds,
            "audit_seconds": time.perf_counter() - start,
            "audit": audit.to_dict(),
        }
        print(f"{label}: AUC {auc:.3f}; " + " | ".join(audit.summary()), flush=True)
    return out


def _e(e: dict, pct: bool = True) -> str:
    if e["value"] is None:
        return "n/a"
    if pct:
        return f"{e['value']:.1%} [{e['low']:.1%}, {e['high']:.1%}]"
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def markdown(results: dict) -> str:
    lines = [
        "| model | attribute | group | n | approval rate | default rate | mean PD | AUC |",
        "|---|---|---|---:|---|---|---|---|",
    ]
    gaps = [
        "| model | attribute | DP ratio | DP difference | equal opp. diff. | equalised odds "
        "diff. | 4/5 flag | counterfactual flip rate | mean abs PD shift |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, result in results.items():
        for a in result["audit"]["attributes"]:
            for g in a["groups"]:
                lines.append(
                    f"| {label} | {a['name']} | {g['group']} | {g['n']} | "
                    f"{_e(g['approval_rate'])} | {_e(g['default_rate'])} | "
                    f"{_e(g['mean_pd'], False)} | {_e(g['auc'], False)} |"
                )
            cf = a["counterfactual"]
            gaps.append(
                f"| {label} | {a['name']} | {_e(a['demographic_parity_ratio'], False)} | "
                f"{_e(a['demographic_parity_difference'], False)} | "
                f"{_e(a['equal_opportunity_difference'], False)} | "
                f"{_e(a['equalized_odds_difference'], False)} | "
                f"{'yes' if a['four_fifths_flag'] else 'no'} | {_e(cf['flip_rate'])} | "
                f"{_e(cf['mean_abs_pd_shift'], False)} |"
            )
    return "\n".join(lines) + "\n\n" + "\n".join(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    results = run(args.n_resamples, args.seed)
    payload = {
        "benchmark": NAME,
        "protocol": __doc__.split("\n\n", 2)[2].split("\nWrites")[0].strip(),
        "command": "DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 nice -n 5 python "
        "bench/fairness_risk.py",
        "machine": machine(),
        "note": "fit / audit seconds measured on 2 CPU cores shared with other work",
        "wall_seconds": time.perf_counter() - start,
        "results": results,
    }
    path = save(NAME, payload)
    print(markdown(results))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
