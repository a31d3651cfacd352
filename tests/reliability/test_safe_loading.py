"""Safe loading: truncated, tampered (a pickle that would run code) or mismatched weights give a
clear RunFolderError; nothing is unpickled beyond tensors and plain values."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest
import torch

from ctseg._fileio import read_json, write_json
from ctseg.errors import RunFolderError
from ctseg.models.persist import load_model
from ctseg.training.checkpoint import load_state


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def test_truncated_weights(tiny_run, tmp_path) -> None:
    run = _copy(tiny_run, tmp_path)
    data = (run / "model_final.pt").read_bytes()
    (run / "model_final.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFolderError, match="model_final.pt: cannot load weights"):
        load_model(run / "model_final.pt")


def test_code_carrying_pickle_is_refused(tiny_run, tmp_path, monkeypatch) -> None:
    run = _copy(tiny_run, tmp_path)
    monkeypatch.chdir(tmp_path)
    torch.save({"x": _Evil()}, run / "model_final.pt", pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(RunFolderError, match="cannot load weights"):
        load_model(run / "model_final.pt")
    torch.save({"epoch": _Evil()}, run / "checkpoint_last.pt")
    with pytest.raises(RunFolderError, match="cannot load checkpoint"):
        load_state(run / "checkpoint_last.pt")
    assert not (tmp_path / "PWNED").exists()


def test_weights_that_do_not_match_the_spec(tiny_run, tmp_path) -> None:
    run = _copy(tiny_run, tmp_path)
    spec = read_json(run / "model_final.json")
    spec["kwargs"]["out_channels"] = spec["kwargs"]["out_channels"] + 2
    write_json(run / "model_final.json", spec)
    with pytest.raises(RunFolderError, match="does not match model_final.json"):
        load_model(run / "model_final.pt")
    write_json(run / "model_final.json", {"name": "no_such_net", "kwargs": {}})
    with pytest.raises(RunFolderError, match="not a valid model spec"):
        load_model(run / "model_final.pt")
