"""An exported pose model in the demo's format, for tests of what runs an exported model.

`exported_pose_model(tmp_path_factory)` saves the default-config network (seeded random
weights) as a checkpoint that records a crop rule, and exports it with `posenet-mlvae export`
(with `--web site` when onnxruntime-web is installed): model.onnx, the demo's graph and
metadata. A random network's angles barely depend on the image, and a parity check on constant
outputs cannot fail, so the observation head is scaled up: the angles then move by about
0.1 deg when every pixel changes by one level. Built once per test session (the export takes
about 15 s) under pytest's base temporary folder. `format_1_model` rewrites an exported
model as model format 1 wrote it (the content mean called `mu_group`), for tests that old
models keep working.
"""

from __future__ import annotations

from pathlib import Path

#: The crop rule the checkpoint records; export must take it as its default (not DEFAULT_CROP_RULE).
CHECKPOINT_CROP_RULE = {"mode": "pad", "margin": 0.15}
#: Factor on the observation head's weights that makes the angles depend on the image.
OBS_HEAD_GAIN = 1000.0


def exported_pose_model(tmp_path_factory) -> Path:
    """Folder with best.pt, model.onnx, export.log and (when onnxruntime-web is installed) site/.

    The web page's assets may arrive after the first call (the web page test installs them with
    `make web` when they are missing), so a later call exports again with the page when site/ is
    still absent; the same checkpoint gives the same model.onnx."""
    folder = tmp_path_factory.getbasetemp() / "exported-pose-model"
    if (folder / "export.log").is_file():  # written last: the export finished
        if not (folder / "site").is_dir() and _page_assets_installed():
            _export(folder)
        return folder
    import torch

    from posenet_mlvae.training.checkpoint import save_checkpoint
    from posenet_mlvae.config import ModelConfig, to_dict
    from posenet_mlvae.network.model import build_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    # Pinned rather than the default: a default that changes the decoder's layers (as
    # recon_downsample did) shifts the random stream, so the pose head and every angle the
    # page tests draw with it; their overlay bounds were checked against these weights.
    config = ModelConfig(recon_downsample=1)
    model = build_model(config)
    with torch.no_grad():
        for parameter in model.obs_head.parameters():
            parameter.mul_(OBS_HEAD_GAIN)
    save_checkpoint(folder / "best.pt", {"model_config": to_dict(config),
                                         "metadata": {"image_size": 64, "categories": ["car"]},
                                         "crop_rule": CHECKPOINT_CROP_RULE,
                                         "model": model.state_dict()})
    _export(folder)
    return folder


def _page_assets_installed() -> bool:
    from export.web_page import page_assets

    try:
        page_assets()
    except ValueError:  # onnxruntime-web not installed
        return False
    return True


def _export(folder: Path) -> None:
    """`posenet-mlvae export` of folder/best.pt to folder/model.onnx (and folder/site when the
    page's assets are installed); export.log, written last, holds what it printed."""
    import contextlib
    import io

    from data_tools.atomic_write import atomic_write_text
    from posenet_mlvae.cli import main

    argv = ["export", "--checkpoint", str(folder / "best.pt"), "--out", str(folder / "model.onnx")]
    if _page_assets_installed():
        argv += ["--web", str(folder / "site")]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = main(argv)
    assert code == 0, log.getvalue()
    atomic_write_text(folder / "export.log", log.getvalue())


def format_1_model(path: Path, out: Path) -> Path:
    """A copy of an exported model as format 1 wrote it: `mu_content` called `mu_group`, no
    `logvar_content` output (format 3 added it) and no model_format_version in the metadata."""
    import onnx

    from data_tools.atomic_write import atomic_write_bytes

    def rename(names):
        names[:] = ["mu_group" if name == "mu_content" else name for name in names]

    model = onnx.load(str(path))
    for node in model.graph.node:
        rename(node.input)
        rename(node.output)
    for info in [*model.graph.output, *model.graph.value_info]:
        if info.name == "mu_content":
            info.name = "mu_group"
    kept_outputs = [o for o in model.graph.output if o.name != "logvar_content"]
    del model.graph.output[:]
    model.graph.output.extend(kept_outputs)
    kept = [p for p in model.metadata_props if p.key != "model_format_version"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.checker.check_model(model)
    atomic_write_bytes(out, model.SerializeToString())
    return out
