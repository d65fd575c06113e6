"""`posenet-mlvae export`: checkpoint -> ONNX model (+ metadata), checked against torch.

    posenet-mlvae export --checkpoint runs/demo/best.pt --out model.onnx [--fp16] [--opset N]
                         [--with-decoder] [--crop-mode pad|stretch] [--crop-margin M] [--web DIR]
                         [--zoom-average Z]

Prints the ONNX Runtime vs torch parity at batch 1 and N; exits 1 without writing the file when
fp32 angles differ by more than 0.01 deg. The crop rule recorded in the metadata comes from the
checkpoint (the rule its training data was cropped with; DEFAULT_CROP_RULE for checkpoints that
do not record one); the flags override it. --web DIR also writes a static web page that runs
the model in the browser (`export.web_page`). --zoom-average bakes test-time zoom averaging
into the graph (or, with 0, leaves it out), whatever the checkpoint's own setting.
"""

from __future__ import annotations

import argparse

from data_tools.image.preprocess import CROP_MODES, DEFAULT_CROP_RULE
from posenet_mlvae.commands.options import add_zoom_average_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="training checkpoint, e.g. RUN/best.pt")
    parser.add_argument("--out", required=True, help="ONNX file to write, e.g. model.onnx")
    parser.add_argument("--fp16", action="store_true",
                        help="float16 weights and arithmetic, float32 inputs/outputs (parity "
                             "reported, not enforced; the fp32 export is checked first)")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset (default: torch's recommended one)")
    parser.add_argument("--with-decoder", action="store_true",
                        help="also write OUT_decoder.onnx: (mu_obs, mu_content) -> images")
    parser.add_argument("--crop-mode", choices=CROP_MODES, default=None,
                        help="crop rule recorded in the metadata; must match the training crops "
                             f"(default: the checkpoint's, else {DEFAULT_CROP_RULE.mode})")
    parser.add_argument("--crop-margin", type=float, default=None,
                        help="box margin recorded in the metadata, a fraction of the box side "
                             f"(default: the checkpoint's, else {DEFAULT_CROP_RULE.margin:g})")
    parser.add_argument("--parity-data", default="",
                        help="grouped dataset dir for the parity images (default: the "
                             "checkpoint's datasets when on disk, else drawn scenes)")
    add_zoom_average_argument(parser)
    parser.add_argument("--web", metavar="DIR", default=None,
                        help="also write a self-contained web page running the model in the "
                             "browser (onnxruntime-web) to DIR; serve it with `python -m "
                             "http.server` (needs `make web` once, in a checkout)")


def _format(report: dict) -> str:
    diffs = report["max_abs_diff"]
    others = ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()
                       if k not in ("azimuth", "elevation", "theta"))
    if not any(k in diffs for k in ("azimuth", "elevation", "theta")):
        return f"batch {report['batch']:>2}: max abs diff {others}"
    return (f"batch {report['batch']:>2}: max angle diff {report['max_angle_diff_deg']:.2g} deg "
            f"(median {report['median_angle_diff_deg']:.2g}); max abs diff {others}")


def run(args: argparse.Namespace) -> int:
    from export.onnx_export import ParityError
    from export.web_page import page_assets, write_web_folder
    from posenet_mlvae.export_model import ExportOptions, export_checkpoint

    if args.web is not None:
        try:
            page_assets()  # before the export: a missing `make web` should not cost an export
        except ValueError as error:
            print(f"error: --web: {error}")
            return 1
    options = ExportOptions(fp16=args.fp16, opset=args.opset, with_decoder=args.with_decoder,
                            crop_mode=args.crop_mode, crop_margin=args.crop_margin,
                            parity_data=args.parity_data, zoom_average=args.zoom_average)
    try:
        result = export_checkpoint(args.checkpoint, args.out, options)
    except ParityError as error:
        print(f"error: export FAILED the parity check, nothing written: {error}")
        return 1
    except ValueError as error:
        print(f"error: {error}")
        return 1
    size_mb = result.model_path.stat().st_size / 1e6
    print(f"wrote {result.model_path} ({size_mb:.2f} MB, {result.precision}); crop rule "
          f"{result.crop_rule.describe()} ({result.crop_rule_source}); parity images: "
          f"{result.parity_source}")
    for report in result.fp32_parity:
        print(f"  fp32 parity (reference export, enforced <= 0.01 deg) {_format(report)}: OK")
    label = "fp16 parity (reported, not enforced)" if args.fp16 else \
        "fp32 parity (enforced <= 0.01 deg)"
    for report in result.parity:
        print(f"  {label} {_format(report)}{'' if args.fp16 else ': OK'}")
    if result.decoder_path is not None:
        enforced = "reported" if args.fp16 else "enforced <= 1e-3"
        print(f"wrote {result.decoder_path}; decoder parity ({enforced}) "
              f"{_format(result.decoder_parity)}")
    if args.web is not None:
        try:
            folder = write_web_folder(result.model_path, args.web)
        except ValueError as error:
            print(f"error: --web: {error} (the model itself was written)")
            return 1
        print(f"wrote the web page to {folder}: serve it with `cd {folder} && python -m "
              "http.server 8000` and open http://localhost:8000/ (`python serve.py` there "
              "enables WASM threads)")
    return 0
