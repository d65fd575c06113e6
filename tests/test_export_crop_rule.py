"""`posenet-mlvae export` records the crop rule the checkpoint was trained with, unless told otherwise.

The rule in the metadata decides how every app crops its input, so it must be the training
data's rule (`checkpoint["crop_rule"]`), DEFAULT_CROP_RULE for checkpoints from before rules were
recorded, and the --crop-mode/--crop-margin flags when given.
"""

from __future__ import annotations

import pytest

from data_tools.image.preprocess import DEFAULT_CROP_RULE, CropRule
from export.onnx_export import read_metadata
from pose_model_fixture import CHECKPOINT_CROP_RULE, exported_pose_model
from posenet_mlvae.export_model import resolve_crop_rule


def test_the_checkpoint_rule_is_the_default():
    assert resolve_crop_rule({"mode": "stretch", "margin": 0.25}) == \
        (CropRule("stretch", 0.25), "checkpoint")


@pytest.mark.parametrize("stored", [None, {}])
def test_old_checkpoints_fall_back_to_the_default_rule(stored):
    assert resolve_crop_rule(stored) == (DEFAULT_CROP_RULE, "default")
    assert DEFAULT_CROP_RULE != CropRule("pad", 0.0)  # the old hard-coded export default


def test_flags_override_the_checkpoint():
    stored = {"mode": "stretch", "margin": 0.25}
    assert resolve_crop_rule(stored, margin=0.0) == (CropRule("stretch", 0.0), "checkpoint + flags")
    assert resolve_crop_rule(stored, mode="pad") == (CropRule("pad", 0.25), "checkpoint + flags")
    assert resolve_crop_rule(None, mode="stretch") == \
        (CropRule("stretch", DEFAULT_CROP_RULE.margin), "default + flags")
    assert resolve_crop_rule(stored, "pad", 0.05) == (CropRule("pad", 0.05), "flags")


def test_bad_flags_are_refused():
    with pytest.raises(ValueError, match="crop mode 'zoom'"):
        resolve_crop_rule(None, mode="zoom")
    with pytest.raises(ValueError, match="margin 5.0"):
        resolve_crop_rule({"mode": "pad", "margin": 0.1}, margin=5.0)


def test_export_records_the_checkpoint_rule(tmp_path_factory):
    folder = exported_pose_model(tmp_path_factory)  # checkpoint: pad, margin 0.15
    metadata = read_metadata(folder / "model.onnx")
    assert (metadata["crop_mode"], float(metadata["crop_margin"])) == \
        (CHECKPOINT_CROP_RULE["mode"], CHECKPOINT_CROP_RULE["margin"])
    assert "margin=0.15" in metadata["crop_rule"]
    assert "crop rule pad with margin 0.15 (checkpoint)" in (folder / "export.log").read_text()
