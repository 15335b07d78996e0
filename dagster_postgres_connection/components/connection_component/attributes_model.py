"""The component's YAML model: Dagster's derived model, with one error per bad nested value.

Dagster derives the attributes model from the component (`Resolvable.model()`) and makes every
non-`str` field `T | str`, so that a value may be a `{{ ... }}` template. For a nested settings
model such as `filters`, a mapping that fails its own validation (a bad regex) then got a
second, spurious error for the `str` branch: "`attributes.filters.str` ... Input should be a
valid string". Here such a field picks its branch by the value's type (a wrap validator): a
string is validated as a template, `None` as `None` (where allowed), anything else as the
model only. So only the model's own message is reported, at the attribute's own path
(`attributes.filters.tables.include`, no union member in it) and its `defs.yaml:line`. The
JSON schema `dg check yaml` uses stays Dagster's own.
"""

import functools
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidatorFunctionWrapHandler, WrapValidator, create_model


def _members(annotation: Any) -> list[Any]:
    """The members of a (nested) union, each without its `Annotated` metadata (Dagster's resolvers)."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _by_value_type(annotation: Any) -> Any | None:
    """`M | str` (or `M | None | str`) validated as one branch chosen by the value's type; None otherwise."""
    members = _members(annotation)
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) != 1 or str not in members or set(members) - {models[0], str, NoneType}:
        return None
    model = models[0]
    optional = NoneType in members

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, (str, model)) or (value is None and optional):
            return handler(value)
        # Straight to the model (also `filters:` left empty): its errors keep their own
        # location under this field's, and no other member adds one.
        return model.model_validate(value)

    return Annotated[annotation, WrapValidator(validate)]


@functools.cache
def with_single_branch_errors(derived: type[BaseModel]) -> type[BaseModel]:
    """`derived` with its `Model | str` fields validated by value type (see the module docstring); same name."""
    overrides: dict[str, Any] = {
        name: (single_branch, field)
        for name, field in derived.model_fields.items()
        if (single_branch := _by_value_type(field.annotation)) is not None
    }
    if not overrides:
        return derived
    return create_model(derived.__name__, __base__=derived, __module__=derived.__module__, **overrides)
