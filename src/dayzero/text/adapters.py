"""Transfer strategies: how much of a pretrained transformer adapts to the task.

A registry in the style of ``peft``: each strategy is a config dataclass (validated in
``__post_init__``) plus an apply function. Strategies act on a plain Hugging Face
``PreTrainedModel`` (e.g. ``TextEncoder.model``) and return the model to train: the same model
with some parameters frozen (``frozen``, ``top_k``, ``full``) or a ``peft`` wrapper around it
(``lora``, ``adalora``, ``ia3``, ``prefix``, all with ``TaskType.FEATURE_EXTRACTION``).

Saved state is small and pickle-free: an ``"adapter"`` artifact (:mod:`dayzero.core.artifact`;
``dayzero.json`` holds the config) plus, for adapters, peft's ``adapter_model.safetensors`` +
``adapter_config.json``, and for ``top_k`` / ``full`` only the trainable parameters as
``weights.safetensors``. ``load_adapter`` puts that state back onto a
freshly loaded base model.

Examples
--------
>>> config = strategy_config("lora", r=8)  # doctest: +SKIP
>>> model = apply_strategy(AutoModel.from_pretrained(folder), config)  # doctest: +SKIP
>>> count_parameters(model)  # doctest: +SKIP
(73728, 22786944)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from dayzero.core.artifact import (
    WEIGHTS_FILE,
    Artifact,
    load_artifact,
    save_artifact,
)
from dayzero.core.checks import positive_int
from dayzero.text.quiet import quiet_loading

ARTIFACT_KIND = "adapter"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # peft's name; never its pickled .bin

# Dotted paths of the transformer block list in common architectures, tried in order.
_LAYER_PATHS = (
    "encoder.layer",  # BERT, RoBERTa, MiniLM, ELECTRA, XLM-R
    "transformer.layer",  # DistilBERT
    "encoder.layers",
    "layers",  # Llama, Mistral, Qwen, SmolLM (the bare AutoModel)
    "h",  # GPT-2 (bare)
    "transformer.h",
    "model.layers",
    "encoder.block",  # T5 encoder
)
# Modules that sit on top of the last block and belong to "the top" when training top-k layers.
_TOP_MODULES = ("pooler", "norm", "ln_f", "final_layer_norm", "encoder.final_layer_norm")


def _positive_int(value: Any, name: str, strategy: str) -> None:
    positive_int(value, f"{strategy}: `{name}`")


def _probability(value: Any, name: str, strategy: str) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"{strategy}: `{name}` must be a float in [0, 1), got {value!r}")


def _target_list(value: Any, name: str, strategy: str) -> None:
    if value is None:
        return
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value) or not value:
        raise ValueError(
            f"{strategy}: `{name}` must be None (auto-detect) or a non-empty list of module "
            f"name suffixes such as ['query', 'value'], got {value!r}"
        )


@dataclass
class FrozenConfig:
    """No parameter of the encoder trains: pure transfer (heads on top may still train)."""

    name: ClassVar[str] = "frozen"


@dataclass
class TopKConfig:
    """Train the top ``k`` transformer layers (and the pooler / final norm); freeze the rest."""

    name: ClassVar[str] = "top_k"
    k: int = 2
    train_top_modules: bool = True

    def __post_init__(self) -> None:
        _positive_int(self.k, "k", self.name)


@dataclass
class FullConfig:
    """Every parameter of the encoder trains (full fine-tuning)."""

    name: ClassVar[str] = "full"


@dataclass
class LoraConfig:
    """LoRA: low-rank updates ``B @ A`` added to the target linear layers.

    ``target_modules=None`` picks peft's default for the architecture (``["query", "value"]`` for
    BERT) and falls back to every linear layer (``"all-linear"``) for unknown ones.
    """

    name: ClassVar[str] = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] | None = None

    def __post_init__(self) -> None:
        _positive_int(self.r, "r", self.name)
        _positive_int(self.alpha, "alpha", self.name)
        _probability(self.dropout, "dropout", self.name)
        _target_list(self.target_modules, "target_modules", self.name)


@dataclass
class AdaLoraConfig:
    """AdaLoRA: LoRA in SVD form whose rank budget shrinks from ``init_r`` to ``target_r``.

    The budget schedule needs the training length: ``total_step`` is required, and the trainer
    must call ``update_and_allocate`` every step
    (``dayzero.train.callbacks.AdaLoraBudgetCallback`` does).
    Ranks stay at ``init_r`` for ``tinit`` steps, shrink every ``deltaT`` steps, and are fixed for
    the last ``tfinal`` steps.
    """

    name: ClassVar[str] = "adalora"
    total_step: int
    init_r: int = 12
    target_r: int = 8
    tinit: int = 0
    tfinal: int = 0
    deltaT: int = 1  # peft's spelling
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] | None = None
    beta1: float = 0.85
    beta2: float = 0.85
    orth_reg_weight: float = 0.5

    def __post_init__(self) -> None:
        for key in ("total_step", "init_r", "target_r", "deltaT", "alpha"):
            _positive_int(getattr(self, key), key, self.name)
        for key in ("tinit", "tfinal"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"adalora: `{key}` must be an int >= 0, got {value!r}")
        if self.target_r > self.init_r:
            raise ValueError(
                f"adalora: `target_r` ({self.target_r}) must be <= `init_r` ({self.init_r})"
            )
        if self.tinit >= self.total_step - self.tfinal:
            raise ValueError(
                f"adalora: no budgeting phase left (tinit={self.tinit} >= total_step - tfinal = "
                f"{self.total_step - self.tfinal}); decrease `tinit`/`tfinal` or increase "
                "`total_step` (set it to the trainer's total number of steps)"
            )
        _probability(self.dropout, "dropout", self.name)
        _probability(self.beta1, "beta1", self.name)
        _probability(self.beta2, "beta2", self.name)
        if self.orth_reg_weight < 0:
            raise ValueError(f"adalora: `orth_reg_weight` must be >= 0, got {self.orth_reg_weight}")
        _target_list(self.target_modules, "target_modules", self.name)


@dataclass
class IA3Config:
    """IA3: learned per-channel scaling of keys, values and feed-forward activations.

    ``target_modules`` / ``feedforward_modules`` default to peft's choice for the architecture.
    """

    name: ClassVar[str] = "ia3"
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None

    def __post_init__(self) -> None:
        _target_list(self.target_modules, "target_modules", self.name)
        _target_list(self.feedforward_modules, "feedforward_modules", self.name)
        if (self.target_modules is None) != (self.feedforward_modules is None):
            raise ValueError(
                "ia3: give both `target_modules` and `feedforward_modules` (the latter a subset of "
                "the former) or neither (peft's default for the architecture)"
            )
        if self.feedforward_modules and not set(self.feedforward_modules) <= set(
            self.target_modules or ()
        ):
            raise ValueError("ia3: `feedforward_modules` must be a subset of `target_modules`")


@dataclass
class PrefixConfig:
    """Prefix tuning: trained key/value vectors for ``num_virtual_tokens`` virtual tokens in
    every attention layer. The output keeps the input's length (the prefix lives in the
    attention cache), so mean pooling with the tokenizer's attention mask is unchanged.
    """

    name: ClassVar[str] = "prefix"
    num_virtual_tokens: int = 10

    def __post_init__(self) -> None:
        _positive_int(self.num_virtual_tokens, "num_virtual_tokens", self.name)


StrategyConfig = (
    FrozenConfig | TopKConfig | FullConfig | LoraConfig | AdaLoraConfig | IA3Config | PrefixConfig
)


@dataclass(frozen=True)
class StrategySpec:
    """One registry entry: the config class, how to apply it, and what it supports."""

    name: str
    config_class: type
    apply: Callable[[nn.Module, Any], nn.Module]
    is_adapter: bool
    can_merge: bool
    description: str = field(default="")


# --------------------------------------------------------------------------- apply functions


def find_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of ``model`` (``encoder.layer`` for BERT-like models).

    Raises
    ------
    ValueError
        For an unknown architecture, listing the module lists that were found.
    """
    for path in _LAYER_PATHS:
        module = _get_submodule(model, path)
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            return module
    found = [f"{n} ({len(m)})" for n, m in model.named_modules() if isinstance(m, nn.ModuleList)]
    raise ValueError(
        f"top_k: cannot find the transformer layer list of {type(model).__name__}; tried "
        f"{list(_LAYER_PATHS)}, found module lists {found or 'none'}. Use another strategy "
        "(lora, full) or pass a bare encoder loaded with transformers.AutoModel"
    )


def _get_submodule(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def _apply_frozen(model: nn.Module, config: FrozenConfig) -> nn.Module:
    model.requires_grad_(False)
    return model


def _apply_top_k(model: nn.Module, config: TopKConfig) -> nn.Module:
    layers = find_layers(model)
    if config.k > len(layers):
        raise ValueError(
            f"top_k: `k`={config.k} but the model has only {len(layers)} layers; "
            f"use k <= {len(layers)} (or the `full` strategy)"
        )
    model.requires_grad_(False)
    for layer in layers[-config.k :]:
        layer.requires_grad_(True)
    if config.train_top_modules:
        for path in _TOP_MODULES:
            module = _get_submodule(model, path)
            if module is not None:
                module.requires_grad_(True)
    return model


def _apply_full(model: nn.Module, config: FullConfig) -> nn.Module:
    model.requires_grad_(True)
    return model


def _lora_targets(model: nn.Module, targets: list[str] | None) -> list[str] | str:
    if targets is not None:
        return list(targets)
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    known = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    return list(known) if known else "all-linear"


def _peft_model(model: nn.Module, config_class: str, **options: Any) -> nn.Module:
    """``model`` wrapped by peft with the adapter ``peft.<config_class>(**options)`` for feature
    extraction (the bare encoder's hidden states)."""
    import peft

    config = getattr(peft, config_class)(task_type=peft.TaskType.FEATURE_EXTRACTION, **options)
    with quiet_loading():  # peft reads transformers' deprecated is_gradient_checkpointing
        return peft.get_peft_model(model, config)


def _lora_options(model: nn.Module, config: LoraConfig | AdaLoraConfig) -> dict[str, Any]:
    """peft arguments of the options LoRA and AdaLoRA share (scale, dropout, target layers)."""
    return {
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": _lora_targets(model, config.target_modules),
    }


def _apply_lora(model: nn.Module, config: LoraConfig) -> nn.Module:
    return _peft_model(model, "LoraConfig", r=config.r, **_lora_options(model, config))


def _apply_adalora(model: nn.Module, config: AdaLoraConfig) -> nn.Module:
    return _peft_model(
        model,
        "AdaLoraConfig",
        init_r=config.init_r,
        target_r=config.target_r,
        tinit=config.tinit,
        tfinal=config.tfinal,
        deltaT=config.deltaT,
        total_step=config.total_step,
        beta1=config.beta1,
        beta2=config.beta2,
        orth_reg_weight=config.orth_reg_weight,
        **_lora_options(model, config),
    )


def _apply_ia3(model: nn.Module, config: IA3Config) -> nn.Module:
    return _peft_model(
        model,
        "IA3Config",
        target_modules=config.target_modules,
        feedforward_modules=config.feedforward_modules,
    )


def _apply_prefix(model: nn.Module, config: PrefixConfig) -> nn.Module:
    return _peft_model(model, "PrefixTuningConfig", num_virtual_tokens=config.num_virtual_tokens)


STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec("frozen", FrozenConfig, _apply_frozen, False, False, "no encoder training"),
        StrategySpec("top_k", TopKConfig, _apply_top_k, False, False, "train the top k layers"),
        StrategySpec("full", FullConfig, _apply_full, False, False, "train every parameter"),
        StrategySpec("lora", LoraConfig, _apply_lora, True, True, "low-rank adapters"),
        StrategySpec("adalora", AdaLoraConfig, _apply_adalora, True, True, "adaptive-rank LoRA"),
        StrategySpec("ia3", IA3Config, _apply_ia3, True, True, "learned activation scaling"),
        StrategySpec("prefix", PrefixConfig, _apply_prefix, True, False, "prefix tuning"),
    )
}


# --------------------------------------------------------------------------- public API


def strategy_config(name: str, **kwargs: Any) -> StrategyConfig:
    """Build and validate the config of strategy ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`STRATEGIES`.
    **kwargs
        Fields of that strategy's config dataclass.

    Raises
    ------
    ValueError
        For an unknown name, an unknown field, or an invalid value.
    """
    spec = _spec(name)
    known = {f.name for f in dataclasses.fields(spec.config_class)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(
            f"strategy {name!r} has no option(s) {unknown}; its options are {sorted(known)}"
        )
    try:
        return spec.config_class(**kwargs)
    except TypeError as error:  # a missing required field, e.g. adalora's total_step
        raise ValueError(f"strategy {name!r}: {error}") from error


def config_to_dict(config: StrategyConfig) -> dict[str, Any]:
    """``{"strategy": name, "config": {field: value}}``, JSON-ready."""
    return {"strategy": config.name, "config": dataclasses.asdict(config)}


def config_from_dict(data: dict[str, Any]) -> StrategyConfig:
    """Inverse of :func:`config_to_dict`."""
    return strategy_config(data["strategy"], **data.get("config", {}))


def apply_strategy(model: nn.Module, config: StrategyConfig) -> nn.Module:
    """Prepare ``model`` for training with ``config``; returns the model to train.

    ``frozen`` / ``top_k`` / ``full`` set ``requires_grad`` on ``model`` in place and return it;
    adapter strategies inject adapters into ``model`` (in place, base weights frozen) and return
    the ``peft.PeftModel`` that wraps it.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A bare Hugging Face model (``AutoModel``), not already wrapped by peft.
    config : a strategy config
        From :func:`strategy_config`.
    """
    spec = _spec(getattr(config, "name", None))
    if not isinstance(config, spec.config_class):
        raise TypeError(f"`config` must be a {spec.config_class.__name__}, got {type(config)}")
    if _is_peft(model):
        raise ValueError(
            "`model` is already a peft model; apply a strategy to a freshly loaded base model "
            "(e.g. transformers.AutoModel.from_pretrained(folder))"
        )
    return spec.apply(model, config)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (adapters included in both)."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total


def save_adapter(model: nn.Module, config: StrategyConfig, folder: str | Path) -> Path:
    """Save what ``config`` trained in ``model`` to ``folder`` (safetensors + JSON, no base model).

    Writes ``dayzero.json`` always (:mod:`dayzero.core.artifact`, kind ``"adapter"``, the
    strategy config as its parameters); peft's ``adapter_model.safetensors`` +
    ``adapter_config.json`` for adapter strategies; ``weights.safetensors`` (the trainable
    parameters only) for ``top_k`` and ``full``; nothing else for ``frozen``.
    """
    spec = _spec(config.name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if spec.is_adapter:
        if not _is_peft(model):
            raise ValueError(
                f"strategy {config.name!r} saves a peft adapter but `model` is not a peft model; "
                "pass the model returned by apply_strategy"
            )
        with warnings.catch_warnings():
            # AdaLoRA can prune a matrix to rank 0; peft then mistakes the empty tensors for
            # unsharded ZeRO-3 weights. They are exact (load_adapter restores them).
            warnings.filterwarnings("ignore", message=".*tensor\\(s\\) have invalid shape")
            model.save_pretrained(str(folder), safe_serialization=True)
    arrays = {}
    if not spec.is_adapter and config.name != "frozen":
        arrays = {
            name: p.detach().to("cpu").float().numpy()
            for name, p in model.named_parameters()
            if p.requires_grad
        }
    params = config_to_dict(config)
    return save_artifact(folder, Artifact(ARTIFACT_KIND, config.name, params, arrays=arrays))


def load_adapter(base_model: nn.Module, folder: str | Path, trainable: bool = False) -> nn.Module:
    """Restore a state saved by :func:`save_adapter` onto a freshly loaded ``base_model``.

    Parameters
    ----------
    base_model : transformers.PreTrainedModel
        The same pretrained model the adapter was trained on, freshly loaded.
    folder : str or Path
        A folder written by :func:`save_adapter`.
    trainable : bool, default False
        ``True`` sets ``requires_grad`` as the strategy trains (to continue training);
        ``False`` freezes everything (inference).

    Returns
    -------
    torch.nn.Module
        ``base_model`` with the saved weights, or the peft model wrapping it.
    """
    folder = Path(folder)
    artifact = load_artifact(folder, ARTIFACT_KIND)
    config = config_from_dict(artifact.params)
    spec = _spec(config.name)
    if spec.is_adapter:
        import peft

        if not (folder / ADAPTER_WEIGHTS).is_file():
            # peft would fall back to a pickled adapter_model.bin: never unpickle.
            raise ValueError(
                f"{folder / ADAPTER_WEIGHTS} is missing; adapters are loaded from safetensors "
                "only (save it again with save_adapter)"
            )

        # peft refuses is_trainable=True for prompt learning because a prefix_projection MLP is
        # not saved; ours trains the prefix embedding itself, so unfreezing it is exact.
        prompt = config.name == "prefix"
        with quiet_loading(), warnings.catch_warnings():
            # AdaLoRA's saved rank_pattern is applied (modules are resized) even though peft
            # warns that its keys "did not match"; the outputs are tested to be identical.
            warnings.filterwarnings("ignore", message=".*rank_pattern keys did not match")
            model = peft.PeftModel.from_pretrained(
                base_model, str(folder), is_trainable=trainable and not prompt
            )
        if trainable and prompt:
            model.prompt_encoder.requires_grad_(True)
    else:
        model = apply_strategy(base_model, config)
        if config.name != "frozen":
            state = {k: torch.from_numpy(v) for k, v in artifact.arrays.items()}
            expected = {n for n, p in model.named_parameters() if p.requires_grad}
            if set(state) != expected:
                raise ValueError(
                    f"{folder / WEIGHTS_FILE} does not fit this base model: "
                    f"missing {sorted(expected - set(state))[:5]}, "
                    f"unexpected {sorted(set(state) - expected)[:5]}"
                )
            model.load_state_dict(state, strict=False)
    if not trainable:
        model.requires_grad_(False)
    return model


class MergedModel(NamedTuple):
    """Result of :func:`merge_for_serving`: the model to serve and whether it is adapter-free."""

    model: nn.Module
    merged: bool


def merge_for_serving(model: nn.Module) -> MergedModel:
    """Fold adapters into the base weights where the method allows (LoRA, AdaLoRA, IA3).

    Returns ``MergedModel(plain_model, True)`` after merging (or for a model without adapters),
    and ``MergedModel(model, False)`` with a warning for prefix tuning, whose virtual tokens
    cannot be folded into weights: serve it unmerged.
    """
    if not _is_peft(model):
        return MergedModel(model, True)
    peft_type = str(model.active_peft_config.peft_type.value).lower()
    if model.active_peft_config.is_prompt_learning:
        warnings.warn(
            f"cannot merge {peft_type} (prefix tuning) into the weights; serve the model unmerged",
            stacklevel=2,
        )
        return MergedModel(model, False)
    return MergedModel(model.merge_and_unload(), True)


def _spec(name: Any) -> StrategySpec:
    if name not in STRATEGIES:
        raise ValueError(f"unknown transfer strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[name]


def _is_peft(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


ENCODER_FOLDER = "encoder"


def save_adapted_encoder(
    encoder: Any, strategy: str, config: StrategyConfig | None, folder: str | Path
) -> None:
    """Save a :class:`~dayzero.text.encoder.TextEncoder` adapted inside a model as the model's
    part ``folder/encoder``: what ``strategy`` trained, alone (:func:`save_adapter`: the peft
    adapter, or the trainable weights of ``top_k`` / ``full``), never the pretrained base.
    Nothing for ``frozen``. Every model that adapts an encoder saves it this one way."""
    if strategy == "frozen":
        return
    if config is None:
        raise ValueError(f"strategy {strategy!r} was applied but its config is missing")
    save_adapter(encoder.model, config, Path(folder) / ENCODER_FOLDER)


def load_adapted_encoder(
    folder: str | Path, base: str, max_length: int, cache_dir: str | None = None
) -> tuple[Any, StrategyConfig] | None:
    """Load what :func:`save_adapted_encoder` wrote in ``folder`` (None when it wrote nothing).

    Returns ``(encoder, config)``: a fresh ``base`` encoder with the saved weights applied,
    and the strategy config (so the loaded model can be saved again).
    """
    from dayzero.text.encoder import TextEncoder

    part = Path(folder) / ENCODER_FOLDER
    if not part.is_dir():
        return None
    config = config_from_dict(load_artifact(part, ARTIFACT_KIND).params)
    encoder = TextEncoder(base, max_length=max_length, cache_dir=cache_dir)
    encoder.model = load_adapter(encoder.model, part)
    encoder.eval()
    return encoder, config


__all__ = [
    "STRATEGIES",
    "AdaLoraConfig",
    "FrozenConfig",
    "FullConfig",
    "IA3Config",
    "LoraConfig",
    "MergedModel",
    "PrefixConfig",
    "StrategySpec",
    "apply_strategy",
    "config_from_dict",
    "config_to_dict",
    "count_parameters",
    "find_layers",
    "load_adapted_encoder",
    "load_adapter",
    "merge_for_serving",
    "save_adapted_encoder",
    "save_adapter",
    "strategy_config",
]
