from __future__ import annotations

import importlib

import pytest

import trackd.jobs


def test_public_names_are_pinned_and_each_loads() -> None:
    assert sorted(trackd.jobs.__all__) == sorted(trackd.jobs._EXPORTS)
    for name in trackd.jobs.__all__:
        module = importlib.import_module(trackd.jobs._EXPORTS[name])
        assert getattr(trackd.jobs, name) is getattr(module, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        trackd.jobs.Nope  # noqa: B018
