"""rlgan.weights: a safetensors file into a network, or an error naming the file and why."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from rlgan.weights import load_weights


def test_weights_round_trip_and_each_refusal_names_the_file(tmp_path):
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    path = tmp_path / "net.safetensors"
    save_file(source.state_dict(), str(path))
    load_weights(target, path)
    torch.testing.assert_close(target.weight, source.weight)
    torch.testing.assert_close(target.bias, source.bias)

    with pytest.raises(FileNotFoundError, match="weights not found: .*none.safetensors"):
        load_weights(target, tmp_path / "none.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="corrupt.safetensors is corrupt"):
        load_weights(target, corrupt)
    with pytest.raises(ValueError, match="net.safetensors was made for another network: size "
                                         "mismatch for weight"):
        load_weights(torch.nn.Linear(4, 2), path)
    save_file({"weight": source.weight.detach()}, str(path))
    with pytest.raises(ValueError, match="made for another network: Missing key.*bias"):
        load_weights(target, path)
