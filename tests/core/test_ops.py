"""Op specs: validation names the field, keys are canonical and stable, dicts round-trip."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from lutcore.errors import SpecError
from lutcore.ops import LRASPP, Conv, InvertedResidual, PoolFC, Skip, spec_from_dict


@pytest.mark.parametrize(
    "kwargs, field, value",
    [
        (dict(c_in=-1), "c_in", -1),
        (dict(c_in=0), "c_in", 0),
        (dict(kernel=4), "kernel", 4),
        (dict(stride=3), "stride", 3),
        (dict(groups=5), "groups", 5),
        (dict(act="gelu"), "act", "gelu"),
        (dict(expansion=0), "expansion", 0),
        (dict(shuffle=True), "shuffle", True),
        (dict(h=2.5), "h", 2.5),
    ],
)
def test_invalid_ir_spec_names_field_and_value(kwargs, field, value):
    base: Dict[str, Any] = dict(c_in=16, h=32, w=32, c_out=16)
    base.update(kwargs)
    with pytest.raises(SpecError) as e:
        InvertedResidual(**base)
    assert e.value.field == field
    assert e.value.value == value
    assert f"ir.{field}={value!r}" in str(e.value)


def test_unknown_family_is_named():
    with pytest.raises(SpecError, match="family='attention'.*unknown op family"):
        spec_from_dict({"family": "attention", "c_in": 1, "h": 1, "w": 1, "c_out": 1})


def test_unknown_field_is_named():
    with pytest.raises(SpecError, match="ir.kernal=3: unknown field"):
        spec_from_dict({"family": "ir", "c_in": 8, "h": 8, "w": 8, "c_out": 8, "kernal": 3})


def test_key_format_matches_design():
    s = InvertedResidual(48, 128, 256, 96, kernel=3, dilation=2, expansion=6)
    assert s.key == "ir:k3_d2_e6_g1:c48x128x256->c96:s1:relu"
    assert len(s.digest) == 12 and int(s.digest, 16) >= 0


def test_equal_specs_share_key_and_numeric_types_do_not_matter():
    a = InvertedResidual(16, 32, 32, 16, expansion=6)
    b = InvertedResidual(16, 32, 32, 16, expansion=6.0)
    assert a == b and a.key == b.key and hash(a) == hash(b)
    assert InvertedResidual(16, 32, 32, 16, expansion=3).key != a.key


def test_batch_appears_in_key_only_when_not_one():
    assert ":b" not in Conv(3, 64, 64, 16).key
    assert Conv(3, 64, 64, 16, batch=8).key.endswith(":b8")


@pytest.mark.parametrize(
    "spec",
    [
        InvertedResidual(16, 32, 32, 24, stride=2, kernel=5, expansion=3, groups=2, shuffle=True),
        InvertedResidual(24, 14, 14, 24, expansion=6, se=2, act="swish"),
        Skip(16, 32, 32, 32, stride=2, mode="factorized_reduce"),
        Conv(3, 224, 224, 32, stride=2),
        PoolFC(1280, 7, 7, 1000),
        LRASPP(96, 16, 32, 19, c_low=24, h_low=32, w_low=64, mid=128, pool_kernel=(16, 32)),
    ],
)
def test_dict_round_trip(spec):
    assert spec_from_dict(spec.to_dict()) == spec
    assert spec_from_dict(spec.to_dict()).key == spec.key


def test_skip_modes_are_validated():
    with pytest.raises(SpecError, match="skip.mode='identity'"):
        Skip(16, 32, 32, 24, mode="identity")
    with pytest.raises(SpecError, match="skip.h=31.*even"):
        Skip(16, 31, 32, 32, stride=2, mode="factorized_reduce")
    assert Skip(16, 32, 32, 16).macs() == 0 and Skip(16, 32, 32, 16).is_identity


def test_ir_expansion_below_one_channel_is_refused():
    # found by the hypothesis shape test: torch cannot build a 0-channel hidden conv
    with pytest.raises(SpecError, match="ir.expansion=0.5: gives a hidden width of 0 channels"):
        InvertedResidual(1, 4, 4, 1, expansion=0.5)
    assert InvertedResidual(2, 4, 4, 2, expansion=0.5).hidden == 1
