"""Fuzz the serialisers: dump_value, load_value, error_to_json and the event schema models."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from inngest_django.schemas.defers import ExperimentRef, Parent
from inngest_django.schemas.events import Event as EventIn
from inngest_django.serialization import (
    OutputNotSerializableError,
    dump_value,
    error_to_json,
    load_value,
    storable_problem,
)

from .strategies import fuzz_settings, json_scalars, json_values, nested, storable_text, text


class Order(BaseModel):
    """A typed step output."""

    id: int
    note: str
    tags: list[str] = []


class Cycle(list):
    """A list that contains itself."""

    def __init__(self) -> None:
        super().__init__()
        self.append(self)


PYTHON_LEAVES = st.one_of(
    json_scalars(),
    st.binary(max_size=4),
    st.sets(st.integers(), max_size=2),
    st.tuples(st.integers(), text(5)),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.decimals(),
    st.uuids(),
    st.complex_numbers(),
    st.builds(object),
    st.builds(Cycle),
    st.builds(Order, id=st.integers(), note=text(5)),
)
PYTHON_VALUES = st.recursive(
    PYTHON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(text(5), st.integers(), st.floats(), st.booleans(), st.none()),
            children,
            max_size=4,
        ),
    ),
    max_leaves=15,
)


@fuzz_settings(400)
@given(value=PYTHON_VALUES)
@example(value={1: "a", "1": "b"})
@example(value=nested(5000))
@example(value="\x00")
@example(value=["\ud800"])
@example(value=decimal.Decimal("NaN"))
def test_dump_value_stores_json_or_raises_output_not_serializable(value: Any):
    try:
        stored, size = dump_value(value)
    except OutputNotSerializableError as exc:
        assert str(exc)
        return
    text_form = json.dumps(stored, allow_nan=False)
    assert storable_problem(stored) == ""
    # What was stored is a fixed point: storing it again changes nothing.
    assert dump_value(stored) == (stored, size)
    assert load_value(stored) == stored
    assert size >= len(text_form.encode()) - len(text_form)


@fuzz_settings(300)
@given(value=json_values(storable=True))
def test_storable_json_is_stored_unchanged(value: Any):
    stored, size = dump_value(value)
    assert stored == value
    assert size == len(json.dumps(value).encode())


# A value that is not an Order is stored as given, with pydantic's warning; see test body.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
@fuzz_settings(200)
@given(
    value=st.one_of(
        st.builds(Order, id=st.integers(), note=storable_text(), tags=st.lists(storable_text())),
        st.fixed_dictionaries({"id": st.integers(), "note": storable_text()}),
        json_values(),
    )
)
def test_typed_outputs_load_back_into_their_type_or_fail_cleanly(value: Any):
    try:
        stored, _ = dump_value(value, Order)
    except OutputNotSerializableError:
        return
    try:
        loaded = load_value(stored, Order)
    except ValidationError:
        # A value that was never an Order: stored as given, refused when read back as one.
        assert not isinstance(value, Order)
        return
    if isinstance(value, Order):
        assert loaded == value


class BrokenStr(Exception):
    """An exception whose message cannot be computed."""

    def __str__(self) -> str:
        raise RuntimeError("no message")


class NamedError(Exception):
    """An exception with a `name` attribute, like StepError."""

    def __init__(self, message: str, name: Any) -> None:
        super().__init__(message)
        self.name = name


EXCEPTIONS = st.one_of(
    st.builds(ValueError, text(40)),
    st.builds(KeyError, json_scalars()),
    st.builds(RuntimeError, text(5), json_scalars()),
    st.builds(BrokenStr),
    st.builds(NamedError, text(10), json_scalars()),
    st.builds(SystemExit, st.integers() | text(5)),
    st.builds(KeyboardInterrupt),
)


@fuzz_settings(300)
@given(exc=EXCEPTIONS, raised=st.booleans())
def test_error_to_json_always_gives_three_storable_strings(exc: BaseException, raised: bool):
    if raised:
        try:
            raise exc
        except BaseException as caught:
            exc = caught
    error = error_to_json(exc)
    assert set(error) == {"name", "message", "stack"}
    assert all(isinstance(value, str) for value in error.values())
    assert storable_problem(error) == ""
    assert json.loads(json.dumps(error)) == error
    assert error["name"] == type(exc).__name__


EVENT_FIELDS = st.dictionaries(
    st.sampled_from(["name", "data", "id", "ts", "user", "v"]) | text(5),
    json_values(8) | st.datetimes() | st.builds(Order, id=st.integers(), note=text(3)),
    max_size=6,
)


@fuzz_settings(300)
@given(fields=EVENT_FIELDS)
@example(fields={"name": "a", "data": None})
@example(fields={"name": "a", "ts": 2**70})
def test_event_schema_validates_or_raises_validation_error(fields: dict[str, Any]):
    try:
        event = EventIn.model_validate(fields)
    except ValidationError:
        return
    wire = event.to_json()
    assert set(wire) == {"name", "data", "id", "ts"}
    assert isinstance(wire["name"], str) and isinstance(wire["id"], str)
    assert isinstance(wire["ts"], int)
    if fields.get("data") is None:
        assert wire["data"] == {}


@fuzz_settings(200)
@given(
    fields=st.dictionaries(
        st.sampled_from(["fn_slug", "run_id", "experiment"]) | text(5),
        json_values(6)
        | st.fixed_dictionaries({"experiment_name": text(5), "variant": text(5)})
        | st.builds(uuid.uuid4),
        max_size=4,
    )
)
def test_parent_schema_validates_or_raises_validation_error(fields: dict[str, Any]):
    try:
        parent = Parent.model_validate(fields)
    except ValidationError:
        return
    assert isinstance(parent.fn_slug, str) and isinstance(parent.run_id, str)
    assert parent.experiment is None or isinstance(parent.experiment, ExperimentRef)
    assert Parent.model_validate(parent.model_dump(mode="json")) == parent


def test_exotic_but_json_friendly_types_are_stored_as_django_encodes_them():
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    stored, _ = dump_value({"at": moment, "amount": decimal.Decimal("1.50")})
    assert stored == {"at": "2026-01-02T03:04:05Z", "amount": "1.50"}
