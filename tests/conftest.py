"""Headless pygame for every test; ``tests/`` on the path for the toy envs; shared fixtures."""

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def one_torch_thread():
    """Small networks run fastest on one thread (and far faster on a busy shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
