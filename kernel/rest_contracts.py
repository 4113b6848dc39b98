"""The REST view of an operation contract: request validation and the OpenAPI schema of a request
body, both derived from the contract's argument model (kernel/contracts.py), so that the REST
API, the MCP tools and /openapi.json read one declaration.

The REST API predates the contracts and its answers are pinned: a 400 lists the problems per field
in DRF's words and shape (`{"field": ["This field is required."]}`, list items by index), and
values reach the operation as DRF read them (integers from "5" or 5.0, text exactly as sent). So
each argument is read by a rule that does what the DRF field declaring it used to do, picked by
the argument's type:

- `str`: a JSON string, not empty (unless `Rest(blank=True)`), without NUL or surrogates;
- `int`: an integer (DRF's reading), at least the contract's `ge`; its maximum, a store limit, is
  documented here and left to the operation, whose error names the limit (`limit_exceeded`);
- `Literal[...]`: one of the choices;
- `list[str]`: counted before its items are read (`count`), then each item as `str` above;
- `list[<model>]`: a list, counted and read item by item by the operation, whose errors name the
  exact field (`entities[0].name`); the schema documents the item model.

Optional arguments may also be null over REST (null means "not given", as on MCP), and
`Rest(optional=True)` makes a required argument optional. Unknown keys are ignored, as on MCP.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from rest_framework import serializers

from kernel.api_schema import Documented, openapi_schema
from kernel.contracts import rest_rule, self_contained

# DRF's messages, word for word (rest_framework/fields.py and validators.py, Django's validators).
REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
NOT_A_STRING = "Not a valid string."
NUL_CHARACTERS = "Null characters are not allowed."
SURROGATE = "Surrogate characters are not allowed: U+{:X}."
NOT_AN_INTEGER = "A valid integer is required."
NOT_A_BOOLEAN = "Must be a valid boolean."
INTEGER_TOO_LONG = "String value too large."
AT_LEAST = "Ensure this value is greater than or equal to {}."
NOT_A_CHOICE = '"{}" is not a valid choice.'
NOT_A_LIST = 'Expected a list of items but got type "{}".'
NO_MORE_THAN = "Ensure this field has no more than {} characters."
NOT_THE_PATTERN = "This value does not match the required pattern."
ITEMS_NOT_A_LIST = "must be a list"

_DECIMAL_ZEROS = re.compile(r"\.0*\s*$")  # DRF reads "5.0" and 5.0 as 5, but not 5.5
_LONGEST_INTEGER_TEXT = 1000  # DRF's guard against huge numeric strings

_ERROR = "rest"


def _refuse(*messages: str) -> PydanticCustomError:
    # The messages travel in the context, not as pydantic's own message: they may quote what was
    # sent, lone surrogates included, which pydantic cannot render.
    return PydanticCustomError(_ERROR, "see the messages", {"messages": list(messages)})


# --- the rules -----------------------------------------------------------------------------------

Rule = Callable[[Any], Any]


def text_rule(
    *,
    nullable: bool = False,
    blank: bool = False,
    trim: bool = False,
    max_length: int | None = None,
    pattern: str | None = None,
) -> Rule:
    """A string, read as DRF's CharField reads it (the same checks in the same order)."""
    compiled = re.compile(pattern) if pattern is not None else None
    # A pattern field calls a non-string a pattern mismatch (DRF's RegexField message wins).
    not_a_string = NOT_THE_PATTERN if compiled is not None else NOT_A_STRING

    def read(value: Any) -> Any:
        if value == "" or (trim and str(value).strip() == ""):
            if not blank:
                raise _refuse(BLANK)
            return ""
        if value is None:
            if not nullable:
                raise _refuse(NULL)
            return None
        if not isinstance(value, str):
            raise _refuse(not_a_string)
        if trim:
            value = value.strip()
        problems = []
        if max_length is not None and len(value) > max_length:
            problems.append(NO_MORE_THAN.format(max_length))
        if "\x00" in value:
            problems.append(NUL_CHARACTERS)
        surrogate = next((ch for ch in value if 0xD800 <= ord(ch) <= 0xDFFF), None)
        if surrogate is not None:
            problems.append(SURROGATE.format(ord(surrogate)))
        if compiled is not None and not compiled.search(value):
            problems.append(NOT_THE_PATTERN)
        if problems:
            raise _refuse(*problems)
        return value

    return read


def integer_rule(*, nullable: bool) -> Rule:
    """An integer, read as DRF's IntegerField reads it; the minimum is checked after (`ge`)."""

    def read(value: Any) -> Any:
        if value is None:
            if not nullable:
                raise _refuse(NULL)
            return None
        if isinstance(value, str) and len(value) > _LONGEST_INTEGER_TEXT:
            raise _refuse(INTEGER_TOO_LONG)
        try:
            return int(_DECIMAL_ZEROS.sub("", str(value)))
        except (ValueError, TypeError):
            raise _refuse(NOT_AN_INTEGER) from None

    return read


def boolean_rule(*, nullable: bool) -> Rule:
    """true or false, as JSON booleans only (not "true", 1 or "yes": a flag that turns a
    safeguard off is not guessed from a look-alike)."""

    def read(value: Any) -> Any:
        if value is None:
            if not nullable:
                raise _refuse(NULL)
            return None
        if not isinstance(value, bool):
            raise _refuse(NOT_A_BOOLEAN)
        return value

    return read


def choice_rule(choices: Sequence[Any], *, nullable: bool) -> Rule:
    """One of `choices`, read as DRF's ChoiceField reads it (by the value's text)."""
    by_text = {str(choice): choice for choice in choices}

    def read(value: Any) -> Any:
        if value is None:
            if not nullable:
                raise _refuse(NULL)
            return None
        try:
            return by_text[str(value)]
        except KeyError:
            raise _refuse(NOT_A_CHOICE.format(value)) from None

    return read


def list_rule(
    *, nullable: bool, count: Callable[[list[Any], str], object] | None, wire: str, message: str | None = None
) -> Rule:
    """A list, counted by `count` (which raises over the limit; None: the operation counts it)
    before its items are read. `message`: what a value that is not a list is told (None: DRF's
    ListField message)."""

    def read(value: Any) -> Any:
        if value is None:
            if not nullable:
                raise _refuse(NULL)
            return None
        if not isinstance(value, list):
            raise _refuse(message if message is not None else NOT_A_LIST.format(type(value).__name__))
        if count is not None:
            count(value, wire)
        return value

    return read


# --- one REST body -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestField:
    """An argument the REST API reads besides the contract's (e.g. the body's `namespace`)."""

    name: str
    rule: Rule  # reads the value (e.g. `text_rule(...)`)
    schema: dict[str, Any]  # its OpenAPI schema
    required: bool = False


# Compared by identity (a schema is a dict, so no value hash); drf-spectacular looks it up.
@dataclass(frozen=True, eq=False)
class RestBody(Documented):
    """A contract's arguments as a REST request body: `validate` reads a decoded JSON object the
    way the API always has, and `schema` (the OpenAPI component `name`) describes it. `contract`
    is the argument model both come from; `model` the pydantic model that reads the body."""

    contract: type[BaseModel] = field(default=BaseModel, repr=False)
    model: type[BaseModel] = field(default=BaseModel, repr=False)

    def validate(self, body: dict[str, Any]) -> dict[str, Any]:
        """The arguments given (wire names), read; raises DRF's ValidationError with DRF's detail,
        or a DomainError (a list over its item limit) before any item is read."""
        try:
            read = self.model.model_validate(body)
        except ValidationError as invalid:
            raise serializers.ValidationError(drf_detail(invalid)) from None
        return {name: getattr(read, name) for name in self.model.model_fields if name in read.model_fields_set}


class _Body(BaseModel):
    # Fields are named by their wire names (alias-free): only those are accepted, as before.
    model_config = ConfigDict(extra="ignore")


def rest_body(
    name: str,
    contract: type[BaseModel],
    *,
    count: Callable[[list[Any], str], object],
    extra: Sequence[RestField] = (),
) -> RestBody:
    """The REST body of `contract`, named `name` in the OpenAPI components; `extra` fields come
    first. `count(items, field)` refuses a list over the item limit (by its length alone).

    Raises TypeError for an argument type no rule reads, and for a contract with validators of
    its own (a rule across arguments, which these rules would not apply): give REST a rule first."""
    decorators = contract.__pydantic_decorators__
    if decorators.field_validators or any(v.info.mode != "before" for v in decorators.model_validators.values()):
        raise TypeError(f"{contract.__name__}: REST does not apply its validators")
    documented = self_contained(contract)
    fields: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for added in extra:
        fields[added.name] = (Annotated[Any, BeforeValidator(added.rule)], ... if added.required else None)
        properties[added.name] = added.schema
        if added.required:
            required.append(added.name)
    for key, info in contract.model_fields.items():
        wire = info.alias or key
        annotation, prop, is_required = _argument(contract, key, info, documented["properties"][wire], count)
        fields[wire] = (annotation, ... if is_required else None)
        properties[wire] = prop
        if is_required:
            required.append(wire)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if description := documented.get("description"):
        schema["description"] = description
    model = create_model(f"{name}Body", __base__=_Body, **fields)
    return RestBody(name=name, schema=openapi_schema(schema), contract=contract, model=model)


def _argument(
    contract: type[BaseModel], key: str, info: FieldInfo, documented: dict[str, Any], count: Any
) -> tuple[Any, dict[str, Any], bool]:
    """How REST reads one argument of `contract`: (pydantic annotation, OpenAPI schema, required)."""
    rest = rest_rule(info.metadata)
    wire = info.alias or key
    optional = not info.is_required()
    base, nullable = _strip_none(info.annotation)
    schema = dict(documented)
    if optional:
        # Null is accepted (it means "not given") though the MCP schema only shows the plain type.
        schema["nullable"] = True
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    reads_null = nullable or optional
    if base is str:
        annotation: Any = Annotated[
            Any, BeforeValidator(text_rule(nullable=reads_null, blank=rest.blank, trim=rest.trim))
        ]
        if not rest.blank:
            schema["minLength"] = 1
    elif base is int:
        minimum = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
        checked: Any = int if minimum is None else Annotated[int, Field(ge=minimum)]
        annotation = Annotated[checked | None, BeforeValidator(integer_rule(nullable=reads_null))]
    elif base is bool:
        annotation = Annotated[Any, BeforeValidator(boolean_rule(nullable=reads_null))]
    elif typing.get_origin(base) is Literal:
        annotation = Annotated[Any, BeforeValidator(choice_rule(typing.get_args(base), nullable=reads_null))]
    elif typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        item, _ = _strip_none(item)
        if item is str:
            text = Annotated[Any, BeforeValidator(text_rule())]
            annotation = Annotated[
                list[text] | None, BeforeValidator(list_rule(nullable=reads_null, count=count, wire=wire))
            ]
            schema["items"] = {**schema["items"], "minLength": 1}
        elif isinstance(item, type) and issubclass(item, BaseModel):
            # The operation reads (and counts) the items, naming the exact field of a wrong one.
            annotation = Annotated[
                Any,
                BeforeValidator(list_rule(nullable=reads_null, count=None, wire=wire, message=ITEMS_NOT_A_LIST)),
            ]
            schema["items"] = _item_schema(item, schema["items"])
        else:
            raise TypeError(f"{contract.__name__}.{key}: REST cannot read a list of {item!r}")
    else:
        raise TypeError(f"{contract.__name__}.{key}: REST cannot read {info.annotation!r}")
    return annotation, schema, info.is_required() and not rest.optional


def _item_schema(model: type[BaseModel], documented: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema of a list item the operation reads: the contract's item schema with the
    REST rules of each of its fields (not empty, `Rest(optional=True)`)."""
    schema = {key: value for key, value in documented.items() if key != "additionalProperties"}
    properties = dict(schema.get("properties", {}))
    required = list(schema.get("required", []))
    for key, info in model.model_fields.items():
        wire = info.alias or key
        rest = rest_rule(info.metadata)
        base, _ = _strip_none(info.annotation)
        prop = dict(properties[wire])
        if base is str and not rest.blank:
            prop["minLength"] = 1
        elif typing.get_origin(base) is list and typing.get_args(base) == (str,):
            prop["items"] = {**prop["items"], "minLength": 1}
        properties[wire] = prop
        if rest.optional and wire in required:
            required.remove(wire)
    schema["properties"] = properties
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)
    return schema


def _strip_none(annotation: Any) -> tuple[Any, bool]:
    """(the type without None and without Annotated's metadata, whether None was allowed)."""
    if typing.get_origin(annotation) is Annotated:
        return _strip_none(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        others = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(others) == 1:
            return _strip_none(others[0])[0], len(others) < len(typing.get_args(annotation))
    return annotation, False


# --- errors in DRF's shape -----------------------------------------------------------------------


def _messages(error: Any) -> list[str]:
    kind, context = error["type"], error.get("ctx") or {}
    if kind == _ERROR:
        return list(context["messages"])
    if kind == "missing":
        return [REQUIRED]
    if kind == "greater_than_equal":
        return [AT_LEAST.format(context["ge"])]
    return [str(error["msg"])]


def drf_detail(invalid: ValidationError) -> dict[Any, Any]:
    """pydantic's errors as DRF's detail: field (wire name) -> messages, list items by index."""
    detail: dict[Any, Any] = {}
    for error in invalid.errors(include_url=False, include_input=False):
        *path, last = error["loc"]
        node = detail
        for part in path:
            node = node.setdefault(part, {})
        node.setdefault(last, []).extend(_messages(error))
    return detail
