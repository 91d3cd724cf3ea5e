"""Reading run configs from YAML (``agents.config_file``), as ``wideseek sft`` and ``wideseek train``
both do: the same file handling, each with its own error class."""

from __future__ import annotations

import pytest

pytest.importorskip("yaml")

from agents.sft.config import SFTConfig, SFTConfigError  # noqa: E402
from agents.train.config import TrainConfig, TrainConfigError  # noqa: E402


def test_an_sft_config_reads_exponent_numbers_as_floats_and_applies_overrides(tmp_path):
    path = tmp_path / "sft.yaml"
    path.write_text("demos: runs/demos\nlr: 1e-4\nsteps: 3\n", encoding="utf-8")
    cfg = SFTConfig.from_yaml(str(path), ["steps=7", "weight_decay=1e-2"])
    assert (cfg.demos, cfg.lr, cfg.steps, cfg.weight_decay) == (["runs/demos"], 1e-4, 7, 0.01)


@pytest.mark.parametrize("content, overrides, message", [
    (b"\xff\xfe not utf-8", [], "not UTF-8 text"),
    (b"- a\n- b\n", [], "must be a YAML mapping"),
    (b"demos: [", [], "invalid YAML"),
    (b"demos: d\n", ["lr"], "must look like key=value"),
    (b"demos: d\n", ["lr=["], "invalid YAML value"),
    (b"demos: d\nlr: fast\n", [], "SFTConfig.lr must be a number"),
    (b"demos: d\nlr: .nan\n", [], "SFTConfig.lr must be a finite number"),
])
def test_every_bad_sft_file_or_override_is_an_sft_config_error(tmp_path, content, overrides, message):
    path = tmp_path / "sft.yaml"
    path.write_bytes(content)
    with pytest.raises(SFTConfigError, match=message):
        SFTConfig.from_yaml(str(path), overrides)


def test_train_and_sft_configs_name_their_own_config_in_file_errors(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(TrainConfigError, match="cannot read the training config"):
        TrainConfig.from_yaml(missing)
    with pytest.raises(SFTConfigError, match="cannot read the SFT config"):
        SFTConfig.from_yaml(str(missing))
