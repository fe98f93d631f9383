"""PoolOptions: one typed object for a pool's tuning; every mistake a ConfigurationError."""

from __future__ import annotations

import dataclasses

import pytest

import pushwire
from pushwire._pool_options import PoolOptionArgs

URL = "https://localhost:1"


def test_the_keyword_arguments_and_the_options_object_name_the_same_options():
    fields = {f.name for f in dataclasses.fields(pushwire.PoolOptions)}
    # request_timeout and max_connections are explicit arguments of both clients.
    assert set(PoolOptionArgs.__annotations__) | {"request_timeout", "max_connections"} == fields


@pytest.mark.parametrize(
    ("misspelt", "suggestion"),
    [("max_conections", "max_connections"), ("ping_timout", "ping_timeout")],
)
def test_a_misspelt_option_names_the_closest_valid_one(misspelt, suggestion):
    with pytest.raises(pushwire.ConfigurationError, match=f"did you mean '{suggestion}'") as e:
        pushwire.APNsClient(base_url=URL, **{misspelt: 3})
    assert e.value.field == misspelt


def test_an_option_like_no_other_lists_the_valid_ones(service_account):
    with pytest.raises(pushwire.ConfigurationError, match="options are those of") as e:
        pushwire.FCMClient(service_account, base_url=URL, zzz=1)
    assert "backoff_base" in str(e.value)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("ping_timeout", float("nan"), "finite, non-negative number of seconds"),
        ("backoff_max", -1, "finite, non-negative number of seconds"),
        ("queue_timeout", 1e300, "finite, non-negative number of seconds"),
        ("connect_timeout", "10", "must be a number of seconds, got str"),
        ("max_retries", 2**40, "between 0 and 4294967295"),
        ("max_streams_per_connection", -1, "between 0 and"),
        ("dead_after_timeouts", 2.5, "must be an int, got float"),
        ("max_connect_attempts", True, "must be an int, got bool"),
        ("stream_id_limit", "1", "must be an int, got str"),
        ("metrics", 1, "must be True or False, got int"),
    ],
)
def test_a_bad_value_names_the_option(option, value, says):
    with pytest.raises(pushwire.ConfigurationError, match=says) as client_error:
        pushwire.APNsClient(base_url=URL, **{option: value})
    assert client_error.value.field == option
    with pytest.raises(pushwire.ConfigurationError, match=says) as object_error:
        pushwire.PoolOptions(**{option: value})
    assert object_error.value.field == option


def test_options_reach_the_client_validated_and_durations_become_floats():
    client = pushwire.APNsClient(base_url=URL, max_connections=2, ping_interval=3, metrics=False)
    options = client.pool_options
    assert options == pushwire.PoolOptions(max_connections=2, ping_interval=3.0, metrics=False)
    assert isinstance(options.ping_interval, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_connections = 3  # type: ignore[misc]


def test_the_engine_refuses_a_bad_path_prefix_as_a_configuration_error():
    engine = pushwire._core.Engine()
    try:
        with pytest.raises(pushwire.ConfigurationError) as e:
            engine.add_pool(URL, pushwire.PoolOptions(), path_prefix="v1/")
        assert e.value.field == "path_prefix"
        with pytest.raises(pushwire.ConfigurationError) as e:
            engine.add_pool("http://plain", pushwire.PoolOptions())
        assert e.value.field == "base_url"
    finally:
        engine.close()
