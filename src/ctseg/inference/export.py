"""ONNX export of a run's network and an onnxruntime backend for the sliding window.

``export_onnx`` writes ``model.onnx`` (input ``image`` (B, 1, *patch) float32, output ``logits``
(B, C, *patch) float32, batch axis dynamic; the deep-supervision heads are not in the graph; a 2D
run's patch is in-plane and the graph is applied to axial slices, ``plan.spatial_dims`` 2) and
``model.json`` beside it: the plan (preprocessing settings), label names, the prediction settings
and where the weights came from. :class:`OnnxNetwork` runs such a graph on onnxruntime's CPU
execution provider and is called exactly as the torch network is by
:func:`~ctseg.inference.sliding_window.sliding_window`.

onnx and onnxruntime are an optional extra: ``pip install ctseg[onnx]``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._fileio import atomic_path, write_json
from .._resources import cpu_threads
from ..errors import InputError
from ..models.runtime import as_logits

__all__ = ["OPSET", "export_onnx", "onnx_bytes", "OnnxNetwork", "cpu_threads"]

#: ONNX opset of the exported graphs (onnxruntime >= 1.14 runs it; InstanceNormalization,
#: ConvTranspose and LeakyRelu in 3D are all covered).
OPSET = 17
_INPUT, _OUTPUT = "image", "logits"


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"the ONNX backend needs the package '{module}', which is not installed; install it with: pip install 'ctseg[onnx]'") from None


class _FullResolution(nn.Module):
    """The network's full-resolution logits only (a deep-supervision list is cut to its first; a
    probability head is turned back into logits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = as_logits(self.model, self.model(x))
        return out[0] if isinstance(out, (list, tuple)) else out


def onnx_bytes(model: nn.Module, patch: tuple[int, ...] | list[int], in_channels: int = 1) -> bytes:
    """The serialised ONNX graph of ``model`` (put in eval mode) at ``patch`` voxels, batch dynamic."""
    _require("onnx")
    wrapped = _FullResolution(model).eval().cpu()
    example = torch.zeros((2, in_channels, *(int(p) for p in patch)), dtype=torch.float32)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # shape checks in the network's forward become constants of the trace: true for the
        # fixed patch, which is the only spatial size this graph is meant to take
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapped,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[_INPUT],
            output_names=[_OUTPUT],
            dynamic_axes={_INPUT: {0: "batch"}, _OUTPUT: {0: "batch"}},
        )
    return buffer.getvalue()


def export_onnx(run_dir: str | Path, output: str | Path, *, checkpoint: str | None = None) -> Path:
    """Write ``output`` (.onnx) for the run folder ``run_dir`` and ``output`` with suffix .json.

    The JSON holds ``plan`` (spacing in mm, patch, normalisation, crop), ``labels`` (value -> name),
    ``predict`` (step, tta, batch size, post-processing), ``input``/``output`` tensor names and
    shapes, the opset and the source weights. Returns the path of the .onnx file.

    Raises:
        InputError: ``output`` does not end in .onnx, or onnx is not installed.
        RunFolderError: ``run_dir`` is not a complete run folder.
    """
    from .predictor import Predictor

    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: the output must be a .onnx file, e.g. -o model.onnx")
    predictor = Predictor(run_dir, device="cpu", checkpoint=checkpoint)
    if predictor.locator is not None:
        raise InputError(f"{run_dir}: a cascade run (two networks) cannot be exported to one ONNX file yet; predict it with --backend torch")
    plan = predictor.plan
    data = onnx_bytes(predictor.model, plan.patch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    from .. import __version__

    write_json(out.with_suffix(".json"), {
        "format": "ctseg-onnx",
        "ctseg_version": __version__,
        "opset": OPSET,
        "input": {"name": _INPUT, "shape": ["batch", 1, *plan.patch_size], "dtype": "float32"},
        "output": {"name": _OUTPUT, "shape": ["batch", plan.num_classes, *plan.patch_size], "dtype": "float32", "meaning": "logits; softmax over axis 1"},
        "plan": plan.to_dict(),
        "labels": {str(k): v for k, v in plan.labels.items()},
        "predict": {"step": predictor.step, "tile_grid": predictor.tile_grid, "tta": predictor.tta, "batch_size": predictor.batch_size, "keep_largest_component": predictor.keep_largest, "min_component_mm3": {str(k): v for k, v in predictor.min_component_mm3.items()}, "min_contact": {str(k): v for k, v in predictor.min_contact.items()}, "min_confidence": {str(k): v for k, v in predictor.min_confidence.items()}},
        "network": predictor.spec,
        "source": {"run": str(Path(run_dir)), "checkpoint": checkpoint or "final"},
    })  # fmt: skip
    return out


class OnnxNetwork:
    """A callable ``(B, 1, *patch) float32 tensor -> (B, C, *patch) logits`` on onnxruntime (CPU).

    ``model`` is a serialised graph (bytes) or a path to a .onnx file; ``threads`` defaults to
    the cores this process may use.
    """

    def __init__(self, model: bytes | str | Path, *, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or cpu_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        (logits,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(logits)
