"""Settings grouped in config dataclasses, with scikit-learn's parameter protocol kept.

A model with many settings takes a few config objects instead of dozens of keyword arguments,
as Hugging Face models take a config::

    TwoTowerRecommender(training=TrainingConfig(epochs=10), towers={"dim": 32})

A config parameter accepts the dataclass or a dict of some of its fields (the rest keep the
model's defaults: JSON and TOML configs stay short). Configs are frozen, so a default instance
is shared safely. :class:`ConfigParams` makes ``get_params(deep=True)`` list every field as
``name__field`` and ``set_params(name__field=value)`` replace the config with an updated copy,
so grid searches and ``sklearn.base.clone`` work as with flat parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

C = TypeVar("C")


def resolve(value: Any, default: C, name: str) -> C:
    """``value`` as a config of ``default``'s class: the config itself, ``default`` updated by
    a dict of fields, or ``default`` for None.

    Raises
    ------
    ValueError
        An unknown field, or a value that is neither the config, a dict nor None; the message
        names the parameter and the fields it has.
    """
    kind = type(default)
    if value is None:
        return default
    if isinstance(value, kind):
        return value
    shorthand = getattr(kind, "shorthand", None)
    if shorthand is not None and not isinstance(value, dict):
        return shorthand(value, default)
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"`{name}` has no field {unknown[0]!r}; {kind.__name__} fields: {sorted(known)}"
            )
        return dataclasses.replace(default, **value)
    raise ValueError(
        f"`{name}` must be a {kind.__name__} or a dict of its fields, got {type(value).__name__}"
    )


def as_dict(value: Any) -> Any:
    """A config as a plain dict (other values unchanged): how configs are saved as JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


class ConfigParams:
    """Mixin for scikit-learn estimators whose parameters include config dataclasses.

    Subclasses list them in ``config_params`` (parameter name -> its default config); put this
    mixin before ``BaseEstimator`` in the bases.
    """

    config_params: ClassVar[dict[str, Any]] = {}

    def _config(self, name: str) -> Any:
        """The parameter ``name`` resolved to its config (see :func:`resolve`)."""
        return resolve(getattr(self, name), self.config_params[name], name)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)  # type: ignore[misc]
        if deep:
            for name in self.config_params:
                config = self._config(name)
                for field in dataclasses.fields(config):
                    params[f"{name}__{field.name}"] = getattr(config, field.name)
        return params

    def set_params(self, **params: Any) -> Any:
        updates: dict[str, dict[str, Any]] = {}
        rest = {}
        for key, value in params.items():
            prefix, _, field = key.partition("__")
            if field and prefix in self.config_params:
                updates.setdefault(prefix, {})[field] = value
            else:
                rest[key] = value
        if rest:  # whole values first: set_params(encoder="m", encoder__max_length=32) keeps both
            super().set_params(**rest)  # type: ignore[misc]
        for name, fields in updates.items():
            setattr(self, name, resolve(fields, self._config(name), name))
        return self


__all__ = ["ConfigParams", "as_dict", "resolve"]
