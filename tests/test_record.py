"""The engine's outcome record: Rust names its fields, Python reads them by those names."""

from __future__ import annotations

import asyncio

import pytest

import pushwire
from pushwire import _core, _record
from pushwire._results import result_from_record
from pushwire.testing import MockAPNs


def test_python_reads_the_fields_rust_exports_in_the_same_order():
    assert _core.OUTCOME_FIELDS == _record.FIELDS
    for position, name in enumerate(_core.OUTCOME_FIELDS):
        assert getattr(_record, name.upper()) == position, name


def test_a_result_is_built_from_the_named_fields():
    # index comes from the id, target_kind from the FCM client (a topic or condition send);
    # every other field of a Result is the engine's, in the engine's order.
    set_by_python = ("index", "target_kind")
    assert [f for f in pushwire.Result.__struct_fields__ if f not in set_by_python] == [
        f for f in _record.FIELDS if f not in ("id", "auth_generation")
    ]


def test_replace_changes_only_the_named_fields():
    record = tuple(range(len(_record.FIELDS)))
    changed = _record.replace(record, outcome="failed", attempts=7)  # type: ignore[arg-type]
    assert changed[_record.OUTCOME] == "failed" and changed[_record.ATTEMPTS] == 7
    assert [v for i, v in enumerate(changed) if i not in (_record.OUTCOME, _record.ATTEMPTS)] == [
        v for i, v in enumerate(record) if i not in (_record.OUTCOME, _record.ATTEMPTS)
    ]
    with pytest.raises(TypeError, match="no field 'attempt'"):
        _record.replace(record, attempt=1)  # type: ignore[arg-type]


def test_a_drained_record_has_every_field_in_place(credentials, message):
    token = "ab" * 32

    async def drain_one() -> tuple[object, ...]:
        with MockAPNs(credentials=credentials, rules={token: "unregistered"}) as server:
            engine = _core.Engine()
            pool = engine.add_pool(server.url, pushwire.PoolOptions(), ca_file=server.ca_file)
            generation = engine.set_authorization(pool, credentials.authorization())
            engine.submit(pool, (3 << 32) | 5, [(token, message, None)])
            records: list[tuple[object, ...]] = []
            while not records:
                await asyncio.sleep(0.01)
                records = list(engine.drain())
            engine.close()
            assert server.received(token) == 1
            return (*records[0], generation)

    *record, generation = asyncio.run(drain_one())
    assert len(record) == len(_record.FIELDS)
    assert record[_record.ID] == (3 << 32) | 5
    assert record[_record.TOKEN] == token
    assert record[_record.OUTCOME] == "rejected"
    assert record[_record.STATUS] == 410
    assert record[_record.REASON] == "Unregistered"
    assert isinstance(record[_record.TIMESTAMP_MS], int)
    assert record[_record.ATTEMPTS] == 1
    assert record[_record.MAYBE_DELIVERED] is False
    assert record[_record.AUTH_GENERATION] == generation
    result = result_from_record(tuple(record), 5)  # type: ignore[arg-type]
    assert (result.index, result.status, result.reason) == (5, 410, "Unregistered")
