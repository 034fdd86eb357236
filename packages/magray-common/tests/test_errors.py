"""The error hierarchy: one tree, stable codes, hints."""

from __future__ import annotations

import builtins

import pytest

from magray.common import errors
from magray.common.errors import DependencyMissingError, MagrayError, OperationTimeoutError


def test_every_error_is_a_magray_error_with_a_unique_code() -> None:
    exported = [getattr(errors, name) for name in errors.__all__]
    classes = [obj for obj in exported if isinstance(obj, type)]
    codes = [cls.code for cls in classes]
    assert all(issubclass(cls, MagrayError) for cls in classes)
    assert len(set(codes)) == len(codes)
    assert len(classes) == 15
    assert [obj.__name__ for obj in exported if obj not in classes] == ["storage_error"]


def test_no_builtin_is_shadowed() -> None:
    assert not set(errors.__all__) & set(dir(builtins))


def test_fields_and_dict() -> None:
    err = MagrayError("boom", hint="do x", code="pkg.boom", details={"k": 1})
    assert str(err) == "boom"
    assert err.to_dict() == {
        "code": "pkg.boom",
        "message": "boom",
        "hint": "do x",
        "retriable": False,
        "details": {"k": 1},
    }
    assert MagrayError.code == "error"  # the instance override does not leak to the class


def test_retriable_defaults() -> None:
    assert OperationTimeoutError("slow").retriable is True
    assert OperationTimeoutError("slow", retriable=False).retriable is False
    assert errors.StorageError("x").retriable is False


def test_missing_extra_hint_is_the_exact_command() -> None:
    err = DependencyMissingError.for_extra(
        distribution="magray-memory", extra="postgres", feature="the postgres backend"
    )
    assert err.hint == 'pip install "magray-memory[postgres]"'
    with pytest.raises(MagrayError):
        raise err
