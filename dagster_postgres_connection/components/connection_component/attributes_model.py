"""The component's YAML model: Dagster's derived model, with one error per bad nested value.

Dagster derives the attributes model from the component (`Resolvable.model()`) and makes every
non-`str` field `T | str`, so that a value may be a `{{ ... }}` template. For a nested settings
model such as `filters`, a mapping that fails its own validation (a bad regex) then got a
second, spurious error for the `str` branch: "`attributes.filters.str` ... Input should be a
valid string". Here those unions become tagged ones (pydantic's callable `Discriminator`): a
string is validated as a template, `None` as `None`, anything else as the model only, so only
the model's own message, with its `defs.yaml:line`, is reported.
"""

import functools
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, create_model

_TEMPLATE_TAG = "str"
_NONE_TAG = "none"


def _members(annotation: Any) -> list[Any]:
    """The members of a (nested) union, each without its `Annotated` metadata (Dagster's resolvers)."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _tagged_union(annotation: Any) -> Any | None:
    """`M | str` (or `M | None | str`) as a union tagged by the value's type; None otherwise."""
    members = _members(annotation)
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) != 1 or str not in members or set(members) - {models[0], str, NoneType}:
        return None
    model = models[0]

    def tag(value: Any) -> str:
        if isinstance(value, str):
            return _TEMPLATE_TAG
        return _NONE_TAG if value is None else model.__name__

    tagged: list[Any] = [Annotated[model, Tag(model.__name__)], Annotated[str, Tag(_TEMPLATE_TAG)]]
    if NoneType in members:
        tagged.append(Annotated[None, Tag(_NONE_TAG)])
    return Annotated[Union[tuple(tagged)], Discriminator(tag)]  # noqa: UP007 (a runtime tuple of members)


@functools.cache
def with_single_branch_errors(derived: type[BaseModel]) -> type[BaseModel]:
    """`derived` with its `Model | str` fields tagged (see the module docstring); same name."""
    overrides: dict[str, Any] = {
        name: (tagged, field)
        for name, field in derived.model_fields.items()
        if (tagged := _tagged_union(field.annotation)) is not None
    }
    if not overrides:
        return derived
    return create_model(derived.__name__, __base__=derived, __module__=derived.__module__, **overrides)
