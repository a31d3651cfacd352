"""ONNX export and the onnxruntime backend agree with torch on a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.tiny import synth_and_train

from ctseg.cli import main
from ctseg.inference import Predictor, sliding_window
from ctseg.io import read_nifti
from ctseg.preprocessing import preprocess_image

pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnx, onnxruntime) is not installed")
pytest.importorskip("onnx", reason="the [onnx] extra (onnx, onnxruntime) is not installed")

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return synth_and_train(tmp_path_factory.mktemp("onnx"), task="pancreas", cases=2, test_cases=1, seed=5, matrix=64)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def test_export_writes_a_dynamic_batch_graph_and_its_settings(tiny) -> None:
    import onnx

    out = tiny["root"] / "export" / "model.onnx"
    assert main(["export", str(tiny["run"]), "-o", str(out)]) == 0
    graph = onnx.load(str(out)).graph
    assert [o.name for o in graph.output] == ["logits"]  # no deep-supervision heads
    dims = graph.input[0].type.tensor_type.shape.dim
    plan = json.loads((tiny["run"] / "plan.json").read_text())
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, *plan["patch_size"]]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["plan"] == plan and meta["labels"] == plan["labels"]
    assert meta["output"]["shape"][1] == max(int(k) for k in plan["labels"]) + 1


def test_export_refuses_a_non_onnx_name(tiny, tmp_path, capsys) -> None:
    assert main(["export", str(tiny["run"]), "-o", str(tmp_path / "model.pt")]) == 2
    assert ".onnx" in capsys.readouterr().err


def test_onnx_network_matches_torch_logits_for_any_batch(tiny) -> None:
    torch_pred, onnx_pred = Predictor(tiny["run"]), Predictor(tiny["run"], backend="onnx")
    patch = torch_pred.plan.patch_size
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 1, *patch)).astype(np.float32))
    with torch.inference_mode():
        ref = torch_pred.model(x)
    for n in (1, 3):
        got = onnx_pred.network(x[:n])
        assert got.shape == (n, torch_pred.plan.num_classes, *patch)
        np.testing.assert_allclose(got.numpy(), ref[:n].numpy(), atol=1e-4, rtol=1e-4)


def test_backends_agree_on_a_whole_case(tiny, tmp_path) -> None:
    image = sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))[0]
    # float32 on both (the torch default is bfloat16 on CPUs with bfloat16 instructions)
    torch_pred, onnx_pred = Predictor(tiny["run"], precision="float32"), Predictor(tiny["run"], backend="onnx")
    ct = read_nifti(image)
    # the stitched probabilities, before post-processing (whose argmax-based component removal
    # turns a 1e-4 difference at a boundary into a whole region); torch runs channels-last on the
    # CPU, onnxruntime its own kernels: both within 1e-3 of each other
    array, _ = preprocess_image(ct, torch_pred.plan)
    p_torch, p_onnx = (sliding_window(array[None], p.network, p.plan.patch_size, p.plan.num_classes) for p in (torch_pred, onnx_pred))
    assert np.abs(p_torch - p_onnx).max() < 1e-3
    outs = {}
    for backend in ("torch", "onnx"):
        outs[backend] = tmp_path / f"{backend}.nii.gz"
        assert main(["predict", "-i", str(image), "-o", str(outs[backend]), "-m", str(tiny["run"]), "--backend", backend, "--precision", "float32"]) == 0
    a, b = (np.asarray(read_nifti(outs[k]).array) for k in ("torch", "onnx"))
    assert a.shape == ct.array.shape
    for label in range(1, torch_pred.plan.num_classes):
        assert _dice(a == label, b == label) >= 0.999, label


def test_unknown_backend_is_refused(tiny) -> None:
    from ctseg.errors import InputError

    with pytest.raises(InputError, match="backend must be one of"):
        Predictor(tiny["run"], backend="tensorrt")


def test_folder_prediction_prints_a_per_case_summary(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "pred"
    assert main(["predict", "-i", str(tiny["data"] / "imagesTr"), "-o", str(out), "-m", str(tiny["run"]), "--backend", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert len(list(out.glob("*.nii.gz"))) == 2
    assert "2 cases in" in printed and "per case median" in printed
