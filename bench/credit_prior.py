"""A transfer prior from other credit tables for German credit k-shot (issue 14, item 4).

    DAYZERO_DATA=../shared/data HF_HUB_OFFLINE=1 python bench/credit_prior.py

The prior (``dayzero.risk.prior``) is fitted on public credit tables other than German credit
(``bench/_credit_data.py``, ``SOURCES`` below): never on any German credit row. Then, with
TabLLM's protocol (as ``bench/german_credit_kshot.py``: 80/20 stratified split seed 0, k rows
class-balanced from the train part, seeds 0-4, ROC-AUC on the 200 test rows):

- ``prior_zero_shot`` (k = 0): the prior's scores, no label; numeric ranks among the test rows.
- ``prior_logreg``: ``PriorLogisticRegression(prior)`` on the k rows (C and the prior's scale by
  3-fold CV on the k rows at k >= 16; the fixed ``SMALL_K_RULE`` at k = 4-8).
- ``zero_prior_logreg``: the same classifier and features without the prior (plain L2 logistic
  regression, C by the same CV; C = 1 at k = 4-8).
- ``*_pool``: the same two, given the train part's 800 applicants' columns without their labels
  as ``X_unlabelled`` (numeric ranks, categories and the prior's centring from the lender's
  applicant pool, not from the k rows alone). Not TabLLM's protocol (which sees k rows only);
  the test part is never in the pool.
- ``riskscorer_prior``: the product's scorer with the prior, ``RiskScorer(prior=prior)``: the
  prior model competes with LightGBM and the linear model on 5 stratified folds of the k rows
  and is taken outright when a class has fewer than 5 rows (k = 4-8, where it is
  ``prior_logreg`` exactly). ``--models riskscorer_prior`` reruns that row alone (the saved
  rows stay as they are).

Source tables: those whose columns carry a meaning a phrase can say, with the columns'
documented descriptions and value labels (``LABELS``, ``VALUE_LABELS``). Left out before any run:
australian and japanese-crx (anonymised A1..A15: a phrase says nothing), csx-consumer-loans
(field codes only), loanapp (the label is a mortgage refusal, and 56 coded columns), sba-loans
(business loans; its Term reflects early charge-off, see its loader), openintro-loans (1.8 %
bad, loans a few months old), lending-club-sample (1,000 rows, AUC .56), taiwan-default-sample
(a 4-column subset of taiwan-default).

``--simulate`` runs the small-k check that fixed ``SMALL_K_RULE``: each source table held out in
turn (its prior from the other tables, ``TransferPrior.leave_out``), k = 4 and 8 rows drawn
class-balanced from it (5 seeds), every (C, prior scale) of the grid fitted on them and scored on
2,000 other rows of that table. No German credit row is used. Writes
``bench/results/credit_prior.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine, save

NAME = "credit_prior"
SOURCES = (
    "taiwan-default",
    "hmeq",
    "bbbrisk-bloan",
    "credit-data",
    "lending-club-2016",
    "aer-creditcard",
)
KS: tuple[int | str, ...] = (4, 8, 16, 32, 64, 128, 256, 512, "all")
SEEDS = (0, 1, 2, 3, 4)
SIM_KS = (4, 8)
SIM_TEST_ROWS = 2000
# Unlabelled rows of the pool variant's simulation: German credit's train part has 800.
POOL_ROWS = 800
# (row name, with the prior, with the train part's unlabelled columns as X_unlabelled).
MODELS = (
    ("prior_logreg", True, False),
    ("zero_prior_logreg", False, False),
    ("prior_logreg_pool", True, True),
    ("zero_prior_logreg_pool", False, True),
)
SCORER_ROW = "riskscorer_prior"
ROWS = (*(name for name, _, _ in MODELS), SCORER_ROW)

_MONTHS = ["September", "August", "July", "June", "May", "April"]
_PAY = {-2: "no consumption", -1: "paid in full", 0: "revolving credit used"}
_PAY |= {1: "payment delay of one month"} | {
    m: f"payment delay of {m} months" for m in range(2, 10)
}
# Column descriptions as the tables' documentation gives them (UCI, HMEQ, modeldata, AER).
LABELS: dict[str, dict[str, str]] = {
    "taiwan-default": {
        "LIMIT_BAL": "amount of given credit",
        "SEX": "sex",
        "EDUCATION": "education",
        "MARRIAGE": "marital status",
        "AGE": "age in years",
        **{
            f"PAY_{i}": f"repayment status in {m}"
            for i, m in zip([0, 2, 3, 4, 5, 6], _MONTHS, strict=True)
        },
        **{f"BILL_AMT{i + 1}": f"amount of bill statement in {m}" for i, m in enumerate(_MONTHS)},
        **{f"PAY_AMT{i + 1}": f"amount paid in {m}" for i, m in enumerate(_MONTHS)},
    },
    "hmeq": {
        "Loan": "amount of the loan request",
        "Mortgage": "amount due on existing mortgage",
        "Value": "value of current property",
        "Reason": "purpose of the loan",
        "Job": "occupation",
        "YOJ": "years at present job",
        "Derogatories": "number of major derogatory reports",
        "Delinquencies": "number of delinquent credit lines",
        "CLAGE": "age of oldest credit line in months",
        "Inquiries": "number of recent credit inquiries",
        "CLNO": "number of credit lines",
        "DEBTINC": "debt-to-income ratio",
    },
    "bbbrisk-bloan": {
        "rev": "revolving utilization of unsecured lines",
        "age": "age in years",
        "city": "city",
        "income": "monthly income",
        "marital": "marital status",
        "debrate": "debt ratio",
        "due30": "number of times 30-59 days past due",
        "due60": "number of times 60-89 days past due",
        "due90": "number of times 90 days or more past due",
        "loan_num": "number of open credit lines and loans",
    },
    "credit-data": {
        "Seniority": "years with the current employer",
        "Home": "type of home ownership",
        "Time": "duration of the loan in months",
        "Age": "age in years",
        "Marital": "marital status",
        "Records": "previous records of non-payment",
        "Job": "type of job",
        "Expenses": "monthly expenses",
        "Income": "monthly income",
        "Assets": "value of assets",
        "Debt": "amount of debt",
        "Amount": "amount of the loan requested",
        "Price": "price of the purchased good",
    },
    "lending-club-2016": {
        "funded_amnt": "loan amount",
        "term": "duration of the loan",
        "int_rate": "interest rate",
        "sub_grade": "credit grade",
        "addr_state": "state",
        "verification_status": "income verification",
        "annual_inc": "annual income",
        "emp_length": "years of employment",
        "delinq_2yrs": "number of delinquencies in the past 2 years",
        "inq_last_6mths": "number of credit inquiries in the past 6 months",
        "revol_util": "revolving line utilization rate",
        "acc_now_delinq": "number of accounts now delinquent",
        "open_il_6m": "number of installment accounts opened in the past 6 months",
        "open_il_12m": "number of installment accounts opened in the past 12 months",
        "open_il_24m": "number of installment accounts opened in the past 24 months",
        "total_bal_il": "balance of installment accounts",
        "all_util": "utilization of all credit lines",
        "inq_fi": "number of personal finance inquiries",
        "inq_last_12m": "number of credit inquiries in the past 12 months",
        "delinq_amnt": "past-due amount owed",
        "num_il_tl": "number of installment accounts",
        "total_il_high_credit_limit": "credit limit of installment accounts",
    },
    "aer-creditcard": {
        "reports": "number of major derogatory reports",
        "age": "age in years",
        "income": "yearly income",
        "owner": "owns their home",
        "selfemp": "self-employed",
        "dependents": "number of dependents",
        "months": "months living at current address",
        "majorcards": "holds a major credit card",
        "active": "number of active credit accounts",
    },
}
_EMP = {"emp_lt_1": "less than 1 year", "emp_ge_10": "10 years or more", "emp_unk": "unknown"}
_EMP |= {f"emp_{i}": f"{i} years" for i in range(1, 10)}
VALUE_LABELS: dict[str, dict[str, dict]] = {
    "taiwan-default": {
        "SEX": {1: "male", 2: "female"},
        "EDUCATION": {1: "graduate school", 2: "university", 3: "high school", 4: "others"}
        | {0: "unknown", 5: "unknown", 6: "unknown"},
        "MARRIAGE": {1: "married", 2: "single", 3: "others", 0: "unknown"},
        **{f"PAY_{i}": _PAY for i in (0, 2, 3, 4, 5, 6)},
    },
    "hmeq": {"Reason": {"DebtCon": "debt consolidation", "HomeImp": "home improvement"}},
    "bbbrisk-bloan": {"marital": {0: "single", 1: "married", 2: "other"}},
    "credit-data": {"Records": {"yes": "yes", "no": "none"}},
    "lending-club-2016": {
        "term": {"term_36": "36 months", "term_60": "60 months"},
        "verification_status": {
            "Not_Verified": "not verified",
            "Verified": "verified",
            "Source_Verified": "source verified",
        },
        "emp_length": _EMP,
    },
    "aer-creditcard": {"majorcards": {0: "no", 1: "yes"}},
}


def _sources() -> dict:
    from _credit_data import load

    return {name: load(name) for name in SOURCES}


def _draw(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    from german_credit_kshot import _draw as draw

    return draw(y, k, seed)


def fit_prior(cache_dir: str | None):
    from dayzero.risk.prior import TransferPrior

    tables = _sources()
    t0 = time.perf_counter()
    prior = TransferPrior(cache_dir=cache_dir).fit(tables, LABELS, VALUE_LABELS)
    return prior, tables, time.perf_counter() - t0


def simulate(prior, tables, pool_rows: int = 0) -> dict:
    """The small-k fixed rule's check on the source tables alone (see the module notes); with
    ``pool_rows``, that many other unlabelled rows of the table are ``X_unlabelled``."""
    from dayzero.risk.metrics import roc_auc
    from dayzero.risk.prior import KSHOT_CS, KSHOT_SCALES, PriorLogisticRegression

    grid = [(c, s) for c in KSHOT_CS for s in KSHOT_SCALES]
    out: dict = {"grid": {}, "zero_prior": {}, "zero_shot": {}, "pool_rows": pool_rows}
    for name, (X, y) in tables.items():
        X, y = X.reset_index(drop=True), np.asarray(y).astype(int)
        held = prior.leave_out(name)
        rng = np.random.default_rng(0)
        for k in SIM_KS:
            for seed in SEEDS:
                pick = _draw(y, k, seed)
                rest = rng.permutation(np.setdiff1d(np.arange(len(y)), pick))
                test = np.sort(rest[: min(SIM_TEST_ROWS, len(rest) // 2)])
                pool = X.iloc[rest[len(test) : len(test) + pool_rows]] if pool_rows else None
                kw = {"labels": LABELS[name], "value_labels": VALUE_LABELS.get(name)}
                for c, s in grid:
                    clf = PriorLogisticRegression(held, C=c, prior_scale=s, **kw)
                    clf.fit(X.iloc[pick], y[pick], X_unlabelled=pool)
                    auc = roc_auc(y[test], clf.decision_function(X.iloc[test]))
                    out["grid"].setdefault(f"{k}|{c}|{s}", {})[f"{name}|{seed}"] = auc
                zero = PriorLogisticRegression(None, C=1.0, **kw)
                zero.fit(X.iloc[pick], y[pick], X_unlabelled=pool)
                auc = roc_auc(y[test], zero.decision_function(X.iloc[test]))
                out["zero_prior"].setdefault(str(k), {})[f"{name}|{seed}"] = auc
        score = held.decision_function(X.iloc[test], LABELS[name], VALUE_LABELS.get(name))
        out["zero_shot"][name] = roc_auc(y[test], score)
    means = {key: float(np.mean(list(v.values()))) for key, v in out["grid"].items()}
    summary = {}
    for k in SIM_KS:
        cells = {key: m for key, m in means.items() if key.startswith(f"{k}|")}
        best = max(cells, key=cells.get)
        summary[str(k)] = {
            "best": best,
            "best_mean_auc": cells[best],
            "zero_prior_mean_auc": float(np.mean(list(out["zero_prior"][str(k)].values()))),
        }
    # One rule for k = 4 and 8: the grid point with the best mean over both.
    pooled = {f"{c}|{s}": float(np.mean([means[f"{k}|{c}|{s}"] for k in SIM_KS])) for c, s in grid}
    rule = max(pooled, key=pooled.get)
    out["mean_auc"] = means
    out["pooled_mean_auc"] = pooled
    out["rule"] = {"C": float(rule.split("|")[0]), "prior_scale": float(rule.split("|")[1])}
    out["summary"] = summary
    return out


def german(prior, ks, seeds, models=ROWS) -> dict:
    from dayzero.datasets.german_credit import CATEGORICAL, NUMERIC, load_german_credit
    from dayzero.evaluate.protocols.splits import train_test_split_stratified
    from dayzero.risk.metrics import roc_auc
    from dayzero.risk.prior import PriorLogisticRegression
    from dayzero.risk.scorer import RiskScorer

    data = load_german_credit()
    frame = data.X[[*CATEGORICAL, *NUMERIC]].reset_index(drop=True)
    y = data.y.to_numpy().astype(int)
    train, test = train_test_split_stratified(y, test_size=0.2, seed=0)
    zero_shot = prior.decision_function(frame.iloc[test])
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(1000):  # 95 % bootstrap interval over the 200 test rows
        rows = rng.integers(0, len(test), len(test))
        if len(np.unique(y[test][rows])) == 2:
            boot.append(roc_auc(y[test][rows], zero_shot[rows]))
    results: dict = {
        "prior_zero_shot": {
            "0": {
                "auc": roc_auc(y[test], zero_shot),
                "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
            }
        }
    }
    for k in ks:
        for seed in seeds:
            pick = train if k == "all" else train[_draw(y[train], int(k), seed)]
            for name, p, pool in MODELS:
                if name not in models:
                    continue
                t0 = time.perf_counter()
                clf = PriorLogisticRegression(prior if p else None, random_state=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    unlabelled = frame.iloc[train] if pool else None
                    clf.fit(frame.iloc[pick], y[pick], X_unlabelled=unlabelled)
                auc = roc_auc(y[test], clf.decision_function(frame.iloc[test]))
                cell = results.setdefault(name, {}).setdefault(
                    str(k), {"per_seed": [], "seeds": [], "chosen": [], "seconds": []}
                )
                cell["per_seed"].append(float(auc))
                cell["seeds"].append(seed)
                cell["chosen"].append(
                    {"C": clf.C_, "prior_scale": clf.prior_scale_, "how": clf.selection_}
                )
                cell["seconds"].append(time.perf_counter() - t0)
            if SCORER_ROW in models:
                t0 = time.perf_counter()
                scorer = RiskScorer(prior=prior, random_state=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scorer.fit(frame.iloc[pick], y[pick])
                auc = roc_auc(y[test], scorer.predict_pd(frame.iloc[test]))
                cell = results.setdefault(SCORER_ROW, {}).setdefault(
                    str(k), {"per_seed": [], "seeds": [], "chosen": [], "seconds": []}
                )
                cell["per_seed"].append(float(auc))
                cell["seeds"].append(seed)
                chosen = {"model": scorer.tabular_model_}
                if scorer.tabular_model_ == "prior":
                    head = scorer.head_
                    chosen |= {"C": head.C_, "prior_scale": head.prior_scale_}
                    chosen["how"] = scorer.depth_selection_.get("reason", "5-fold AUC")
                chosen["mean_fold_auc"] = {
                    m: float(np.mean(c["auc"]))
                    for m, c in scorer.depth_selection_["candidates"].items()
                }
                cell["chosen"].append(chosen)
                cell["seconds"].append(time.perf_counter() - t0)
        print(f"k={k} done", flush=True)
    for by_k in results.values():
        for cell in by_k.values():
            if "per_seed" in cell:
                v = cell["per_seed"]
                cell["mean"] = float(np.mean(v))
                cell["std"] = float(np.std(v, ddof=1)) if len(v) > 1 else None
            else:
                cell["mean"], cell["std"] = cell["auc"], None
    # The prior's weights of German credit's phrases (what the prior says, for reading).
    from dayzero.risk.prior import FieldPhrases

    phraser = FieldPhrases().fit(frame.iloc[train])
    weights = prior.weights_for(phraser)
    results["german_phrase_weights"] = dict(
        zip(phraser.phrases_, [round(float(w), 4) for w in weights], strict=True)
    )
    return results


def table(payload: dict) -> str:
    from german_credit_kshot import TABLLM_BEST

    ks = [str(k) for k in KS]
    lines = ["| model | 0 | " + " | ".join(ks) + " |", "|---" * (len(ks) + 2) + "|"]
    lines.append(
        "| TabLLM best | — | " + " | ".join(f"{TABLLM_BEST[_k(k)]:.2f}" for k in ks) + " |"
    )
    res = payload["german"]
    zs = res["prior_zero_shot"]["0"]["mean"]
    for name in ROWS:
        cells = []
        for k in ks:
            c = res.get(name, {}).get(k)
            cells.append("—" if c is None else f"{c['mean']:.3f} ± {c['std']:.3f}")
        first = f"{zs:.3f}" if name == "prior_logreg" else "—"
        lines.append(f"| {name} | {first} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _k(k: str):
    return k if k == "all" else int(k)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default=",".join(str(k) for k in KS))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--simulate", action="store_true", help="the small-k rule's source check")
    parser.add_argument("--no-german", action="store_true", help="skip the German credit rows")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    parser.add_argument("--save-prior", default=None, help="also save the fitted prior here")
    parser.add_argument(
        "--models",
        default=None,
        help=f"rerun only these German rows, comma-separated, of {', '.join(ROWS)}; the other "
        "saved rows, the prior's record and the zero-shot row stay as they are",
    )
    args = parser.parse_args()
    rows = ROWS if args.models is None else tuple(args.models.split(","))
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"--models: unknown rows {unknown}; choose from {', '.join(ROWS)}")
    start = time.perf_counter()
    prior, tables, fit_seconds = fit_prior(args.cache_dir)
    print(f"prior fitted in {fit_seconds:.0f} s, alpha {prior.alpha_}", flush=True)
    for name, row in prior.loto_["tables"].items():
        print(f"  LOTO {name}: {row}", flush=True)
    if args.save_prior:
        prior.save(args.save_prior)
    path = RESULTS / f"{NAME}.json"
    payload = json.loads(path.read_text()) if path.is_file() else {}
    if args.models is not None and "german" in payload:
        # Rerun of some rows: only those rows change.
        ks = tuple(_k(k) for k in args.ks.split(","))
        seeds = tuple(int(s) for s in args.seeds.split(","))
        fresh = german(prior, ks, seeds, rows)
        for row in rows:
            payload["german"][row] = fresh[row]
        runs = payload.setdefault("row_runs", {})
        runs[",".join(rows)] = {
            "machine": machine(),
            "cores": "2 shared cores (other engineers' jobs ran at the same time)",
            "wall_seconds": time.perf_counter() - start,
        }
        print(table(payload))
        save(NAME, payload)
        return
    payload |= {
        "sources": {
            n: {"rows": len(t[1]), "bad_rate": float(np.mean(t[1]))} for n, t in tables.items()
        },
        "prior": {
            "alpha": prior.alpha_,
            "loto": prior.loto_,
            "source_C": {n: s["C"] for n, s in prior.source_.items()},
            "n_phrases": {n: len(s["phrases"]) for n, s in prior.source_.items()},
            "fit_seconds": fit_seconds,
        },
        "machine": machine(),
        "cores": "2 shared cores (other engineers' jobs ran at the same time)",
    }
    # The other weight definition, for the record of why "marginal" is the default.
    from dayzero.risk.prior import TransferPrior

    joint = TransferPrior(cache_dir=args.cache_dir, effects="joint").fit(
        tables, LABELS, VALUE_LABELS
    )
    payload["prior"]["loto_joint_effects"] = joint.loto_
    bare = TransferPrior(cache_dir=args.cache_dir, rank_template="{}")
    payload["prior"]["loto_bare_rank_label"] = bare.fit(tables, LABELS, VALUE_LABELS).loto_
    if args.simulate:
        payload["simulation"] = simulate(prior, tables)
        payload["simulation_pool"] = simulate(prior, tables, pool_rows=POOL_ROWS)
        for key in ("simulation", "simulation_pool"):
            print(key, json.dumps(payload[key]["summary"]), payload[key]["rule"])
    if not args.no_german:
        ks = tuple(_k(k) for k in args.ks.split(","))
        payload["german"] = german(prior, ks, tuple(int(s) for s in args.seeds.split(",")))
        payload["protocol"] = (
            "TabLLM: 80/20 stratified split seed 0, class-balanced k-shot from train, 5 seeds, "
            "hyper-parameters by 3-fold stratified CV (ROC-AUC) on the k rows at k >= 16, "
            "SMALL_K_RULE at k = 4-8; prior fitted on other tables only"
        )
        print(table(payload))
    payload["wall_seconds"] = time.perf_counter() - start
    save(NAME, payload)
    print(f"wall {payload['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
