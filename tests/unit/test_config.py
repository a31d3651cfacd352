from __future__ import annotations

import pytest

from ctseg.config import Config, list_presets, load_config, parse_override
from ctseg.errors import InputError


def test_presets_load_and_override_in_order(tmp_path) -> None:
    assert {"default", "cpu"} <= set(list_presets())
    extra = tmp_path / "extra.yaml"
    extra.write_text("train:\n  lr: 0.5\n  batch_size: 4\n")
    cfg = load_config("cpu", extra, [parse_override("train.lr=0.25")])
    assert cfg.train.lr == 0.25  # override beats file
    assert cfg.train.batch_size == 4  # file beats preset
    assert cfg.plan.max_median_voxels == 1_300_000  # preset beats defaults


def test_round_trip_and_hash() -> None:
    cfg = load_config("cpu")
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg and again.hash() == cfg.hash()
    assert cfg.merged({"train": {"lr": 1.0}}).hash() != cfg.hash()


@pytest.mark.parametrize(
    ("data", "message"),
    [({"train": {"lrr": 1}}, "unknown setting"), ({"train": {"lr": "fast"}}, "expected a number"), ({"nope": {}}, "unknown setting")],
)
def test_bad_settings_are_refused(data, message) -> None:
    with pytest.raises(InputError, match=message):
        Config.from_dict(data)


def test_unknown_preset_lists_valid_ones() -> None:
    with pytest.raises(InputError, match="available: .*cpu"):
        load_config("no-such-preset")
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_override("train.lr")
