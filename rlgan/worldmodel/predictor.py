"""A trained generator as a batched next-frame predictor (what the safety search calls)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.compiled import FixedBatchNetwork, tree_batch_sizes
from rlgan.device import inference_memory_format, resolve_device
from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.frames import observations_to_tensor, tensor_to_observations, to_uint8, to_unit
from rlgan.worldmodel.model import Generator
from rlgan.worldmodel.run import DataInfo, checkpoint_dir, load_progress, load_run_info, load_weights


#: Frames per eager generator call on the CPU: small batches keep activations in cache, so
#: three calls of 9 frames are faster than one of 27.
CPU_CHUNK = 9
#: Largest batch of a compiled generator: compiled, one call of 27 frames (a full depth-3 level
#: of a 3-action tree) is about 1.25x faster than three calls of 9.
COMPILED_BATCH = 27


class WorldModel:
    """SAD-GAN's generator, ready to predict the next frame of every action in one call.

    Load one with :meth:`load`. Attributes describe what it was trained for, so a caller can
    refuse a mismatched env: ``env_id``, ``env_kwargs``, ``frame_shape`` ``(H, W, C)``,
    ``n_actions``, ``history`` (frames of context), ``step`` (training steps done).

    Args:
        network: the generator (put in eval mode and moved to ``device``).
        config: its settings.
        data: what it was trained on.
        device: where it runs.
        step: generator updates it was trained for.
        compiled: run the generator through ``torch.compile`` on the batch sizes of a search
            tree's levels (:mod:`rlgan.compiled`), compiled here, before the first prediction:
            a depth-3 search about 1.4x faster on 2 CPU cores, after a compile of 20-60 s
            per batch size the first time on a machine.
        max_batch: the largest compiled batch (default :data:`COMPILED_BATCH`).

    Raises:
        RuntimeError: ``compiled`` on a machine where ``torch.compile`` cannot build.
    """

    def __init__(self, network: Generator, config: WorldModelConfig, data: DataInfo,
                 device: str | torch.device = "cpu", step: int = 0, compiled: bool = False,
                 max_batch: int = COMPILED_BATCH) -> None:
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self.layout = inference_memory_format(self.device)
        self.network.to(memory_format=self.layout)
        self.config = config
        self.data = data
        self.env_id: str = data.env_id
        self.env_kwargs: dict[str, Any] = dict(data.env_kwargs)
        self.frame_shape: tuple[int, int, int] = tuple(data.frame_shape)
        self.n_actions: int = data.n_actions
        self.history: int = config.history
        self.step = step
        self.fixed_batches = None
        if compiled:
            self.fixed_batches = FixedBatchNetwork(
                self.network, tree_batch_sizes(self.n_actions, max_batch), self._example_inputs)
            self.fixed_batches.warm_up()

    def _example_inputs(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Generator inputs of ``batch`` rows, laid out as :meth:`predict` passes them."""
        config = self.config
        frames = torch.zeros(batch, config.history * config.channels, config.frame_height,
                             config.frame_width, device=self.device)
        return (frames.contiguous(memory_format=self.layout),
                torch.zeros(batch, dtype=torch.int64, device=self.device),
                torch.zeros(batch, config.z_dim, device=self.device))

    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu",
             compiled: bool = False) -> WorldModel:
        """The generator of the latest checkpoint of a ``rlgan worldmodel train`` run
        (``compiled``: see the class).

        Raises:
            FileNotFoundError: not a world-model run, or one without a checkpoint.
            ValueError: a corrupt run.
            RuntimeError: ``compiled`` on a machine where ``torch.compile`` cannot build.
        """
        config, data = load_run_info(run_dir)
        network = Generator(config)
        load_weights(network, checkpoint_dir(run_dir) / "generator.safetensors")
        return cls(network, config, data, device, int(load_progress(run_dir)["step"]), compiled)

    def check_compatible(self, what: str, env_id: str, frame_shape: Sequence[int],
                         n_actions: int) -> None:
        """Raise ``ValueError`` unless ``what`` has this model's env id, frame shape and actions."""
        self.data.check_compatible(what, env_id, tuple(frame_shape), n_actions)

    def _actions(self, actions: Any, batch: int) -> torch.Tensor:
        actions = torch.as_tensor(np.asarray(actions) if not torch.is_tensor(actions) else actions)
        if actions.shape != (batch,) or actions.dtype.is_floating_point:
            raise ValueError(f"actions must be {batch} integers (B,), got shape "
                             f"{tuple(actions.shape)} and dtype {actions.dtype}")
        if batch and (int(actions.min()) < 0 or int(actions.max()) >= self.n_actions):
            raise ValueError(f"actions must be in 0..{self.n_actions - 1} (Discrete("
                             f"{self.n_actions})), got {actions.tolist()}")
        return actions.to(self.device, torch.int64)

    @torch.inference_mode()
    def predict(self, frames: np.ndarray | torch.Tensor, actions: Any, n_samples: int = 1,
                generator: torch.Generator | None = None) -> np.ndarray | torch.Tensor:
        """Predict frame t+1 for each (frames, action) pair, ``n_samples`` noise draws each.

        Args:
            frames: either float ``(B, history, C, H, W)`` in [-1, 1] (tensor), or uint8
                frames in the observation layout ``(B, history, H, W, C)`` (numpy array or
                tensor), oldest first.
            actions: ``(B,)`` integers in ``0..n_actions-1``.
            n_samples: noise samples z per pair (K >= 1).
            generator: a CPU ``torch.Generator`` for z, so predictions replay exactly.

        Returns:
            The same kind as ``frames``: float ``(B, K, C, H, W)`` in [-1, 1], or uint8
            ``(B, K, H, W, C)`` numpy array.

        Raises:
            ValueError: frames or actions of the wrong shape, dtype or range.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        height, width, channels = self.frame_shape
        as_uint8 = (isinstance(frames, np.ndarray) and frames.dtype == np.uint8) or (
            torch.is_tensor(frames) and frames.dtype == torch.uint8)
        if as_uint8:
            expected = (self.history, height, width, channels)
            if tuple(frames.shape[1:]) != expected or frames.ndim != 5:
                raise ValueError(f"uint8 frames must be (B, {', '.join(map(str, expected))}) "
                                 f"(B, history, H, W, C), got {tuple(frames.shape)}")
            tensor = to_unit(observations_to_tensor(frames).to(self.device))
        else:
            if not torch.is_tensor(frames) or not frames.dtype.is_floating_point:
                raise ValueError("frames must be a float tensor in [-1, 1] (B, history, C, H, W) "
                                 f"or uint8 (B, history, H, W, C), got {type(frames).__name__} "
                                 f"of dtype {frames.dtype}")
            expected = (self.history, channels, height, width)
            if tuple(frames.shape[1:]) != expected or frames.ndim != 5:
                raise ValueError(f"float frames must be (B, {', '.join(map(str, expected))}) "
                                 f"(B, history, C, H, W), got {tuple(frames.shape)}")
            tensor = frames.to(self.device, torch.float32)
        batch = tensor.shape[0]
        actions = self._actions(actions, batch)
        stacked = tensor.reshape(batch, self.history * channels, height, width)
        stacked = stacked.repeat_interleave(n_samples, dim=0).contiguous(memory_format=self.layout)
        actions = actions.repeat_interleave(n_samples)
        z = torch.randn(batch * n_samples, self.config.z_dim, generator=generator).to(self.device)
        if len(stacked) == 0:
            predicted = stacked.new_zeros(0, channels, height, width)
        elif self.fixed_batches is not None:
            predicted = self.fixed_batches(stacked, actions, z)
        else:
            chunk = CPU_CHUNK if self.device.type == "cpu" else len(stacked)
            predicted = torch.cat([self.network(stacked[i:i + chunk], actions[i:i + chunk],
                                                z[i:i + chunk])
                                   for i in range(0, len(stacked), chunk)])
        predicted = predicted.reshape(batch, n_samples, channels, height, width)
        if as_uint8:
            return tensor_to_observations(to_uint8(predicted))
        return predicted
