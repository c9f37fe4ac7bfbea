"""A trained world model (the GAN's generator or the VAE) as a batched next-frame predictor
(what the safety search calls)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlgan.compiled import FixedBatchNetwork, tree_batch_sizes
from rlgan.device import inference_memory_format, resolve_device
from rlgan.weights import load_weights
from rlgan.worldmodel.config import WorldModelConfig
from rlgan.worldmodel.frames import observations_to_tensor, tensor_to_observations, to_uint8, to_unit
from rlgan.worldmodel.networks import predicting_network
from rlgan.worldmodel.run import DataInfo, checkpoint_dir, load_progress, load_run_info


#: Frames per eager generator call on the CPU: small batches keep activations in cache, so
#: three calls of 9 frames are faster than one of 27.
CPU_CHUNK = 9
#: Largest batch of a compiled generator: compiled, one call of 27 frames (a full depth-3 level
#: of a 3-action tree) is about 1.25x faster than three calls of 9.
COMPILED_BATCH = 27


class WorldModel:
    """A world model's predicting network (SAD-GAN's generator or the VAE of
    ``model="vae"``), ready to predict the next frame of every action in one call.

    Load one with :meth:`load`. Attributes describe what it was trained for, so a caller can
    refuse a mismatched env: ``env_id``, ``env_kwargs``, ``frame_shape`` ``(H, W, C)``,
    ``n_actions``, ``history`` (frames of context), ``step`` (training steps done).

    Args:
        network: the generator or VAE, with ``encode`` and ``decode`` as
            :class:`rlgan.worldmodel.model.Generator` (put in eval mode and moved to ``device``).
        config: its settings.
        data: what it was trained on.
        device: where it runs.
        step: generator updates it was trained for.
        compiled: run the generator's encoder and decoder (:meth:`Generator.encode`,
            :meth:`Generator.decode`) through ``torch.compile`` on the batch sizes of a search
            tree's levels (:mod:`rlgan.compiled`), compiled here, before the first prediction:
            a depth-3 search about 1.3x faster on 2 CPU cores, after a compile of 10-60 s per
            part and batch size the first time on a machine.
        max_batch: the largest compiled batch (default :data:`COMPILED_BATCH`).

    Raises:
        RuntimeError: ``compiled`` on a machine where ``torch.compile`` cannot build.
    """

    def __init__(self, network: nn.Module, config: WorldModelConfig, data: DataInfo,
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
        self.encoder = _Method(self.network, "encode")
        self.decoder = _Method(self.network, "decode")
        if compiled:
            sizes = tree_batch_sizes(self.n_actions, max_batch)
            self.encoder = FixedBatchNetwork(self.encoder, sizes, self._example_frames)
            self.decoder = FixedBatchNetwork(self.decoder, sizes, self._example_decoder_inputs)
            self.encoder.warm_up()
            self.decoder.warm_up()

    def _example_frames(self, batch: int) -> tuple[torch.Tensor]:
        """Encoder input of ``batch`` rows, laid out as :meth:`predict` passes it."""
        config = self.config
        frames = torch.zeros(batch, config.history * config.channels, config.frame_height,
                             config.frame_width, device=self.device)
        return (frames.contiguous(memory_format=self.layout),)

    def _example_decoder_inputs(self, batch: int) -> tuple[torch.Tensor, ...]:
        """Decoder inputs of ``batch`` rows, laid out as :meth:`predict` passes them."""
        (frames,) = self._example_frames(batch)
        with torch.inference_mode():
            features = [self._layout(map_) for map_ in self.network.encode(frames)]
        return (frames, *features, torch.zeros(batch, dtype=torch.int64, device=self.device),
                torch.zeros(batch, self.config.z_dim, device=self.device))

    def _layout(self, tensor: torch.Tensor, times: int = 1) -> torch.Tensor:
        """A 4-D tensor with each row repeated ``times`` times in a row (a, a, b, b, ...), in the
        network's memory layout (repeating in NHWC keeps channels-last maps channels-last)."""
        if times > 1 and self.layout == torch.channels_last:
            tensor = tensor.permute(0, 2, 3, 1).repeat_interleave(times, dim=0).permute(0, 3, 1, 2)
        elif times > 1:
            tensor = tensor.repeat_interleave(times, dim=0)
        return tensor.contiguous(memory_format=self.layout)

    def _run(self, part: Any, inputs: Sequence[torch.Tensor]) -> Any:
        """``part`` (encoder or decoder) on ``inputs``: compiled parts split batches themselves;
        eager ones on the CPU run in chunks of :data:`CPU_CHUNK` rows."""
        rows = inputs[0].shape[0]
        if isinstance(part, FixedBatchNetwork) or self.device.type != "cpu" or rows <= CPU_CHUNK:
            return part(*inputs)
        pieces = [part(*[tensor[i:i + CPU_CHUNK] for tensor in inputs])
                  for i in range(0, rows, CPU_CHUNK)]
        if isinstance(pieces[0], tuple):
            return tuple(torch.cat(maps) for maps in zip(*pieces))
        return torch.cat(pieces)

    def _generate(self, frames: torch.Tensor, actions: torch.Tensor, z: torch.Tensor,
                  times: int) -> torch.Tensor:
        """Next frames of ``frames`` (B, history*C, H, W), each row taken ``times`` times in a
        row with the ``B * times`` actions and noise rows: float ``(B * times, C, H, W)``. The
        encoder runs once per row of ``frames``."""
        if len(frames) == 0:
            return frames.new_zeros(0, self.config.channels, *frames.shape[2:])
        features = self._run(self.encoder, [frames])
        inputs = [self._layout(tensor, times) for tensor in (frames, *features)]
        return self._run(self.decoder, [*inputs, actions, z])

    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu",
             compiled: bool = False) -> WorldModel:
        """The predicting network of the latest checkpoint of a ``rlgan worldmodel train`` run
        (``compiled``: see the class).

        Raises:
            FileNotFoundError: not a world-model run, or one without a checkpoint.
            ValueError: a corrupt run.
            RuntimeError: ``compiled`` on a machine where ``torch.compile`` cannot build.
        """
        config, data = load_run_info(run_dir)
        network = predicting_network(config)
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

    def _stacked(self, frames: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Checked frames as the network's input, float ``(B, history*C, H, W)`` in [-1, 1] in
        its layout on its device, and whether they came as uint8 observations."""
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
        stacked = tensor.reshape(tensor.shape[0], self.history * channels, height, width)
        return self._layout(stacked), as_uint8

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
        stacked, as_uint8 = self._stacked(frames)
        batch = stacked.shape[0]
        actions = self._actions(actions, batch).repeat_interleave(n_samples)
        z = torch.randn(batch * n_samples, self.config.z_dim, generator=generator).to(self.device)
        predicted = self._generate(stacked, actions, z, n_samples).unflatten(0, (batch, n_samples))
        if as_uint8:
            return tensor_to_observations(to_uint8(predicted))
        return predicted

    @torch.inference_mode()
    def predict_children(self, frames: np.ndarray | torch.Tensor, actions: Any,
                         n_samples: int = 1,
                         generator: torch.Generator | None = None) -> np.ndarray | torch.Tensor:
        """Predict frame t+1 of every row of ``frames`` under every one of ``actions``.

        Equals :meth:`predict` on each row repeated ``len(actions)`` times with the actions
        tiled (the same noise draws, in the same order), but encodes each row once: the
        search's children of a node share their parent's encoder maps.

        Args:
            frames: as in :meth:`predict`, ``F`` rows.
            actions: ``(A,)`` integers in ``0..n_actions-1``.
            n_samples: noise samples z per child (K >= 1).
            generator: a CPU ``torch.Generator`` for z.

        Returns:
            The same kind as ``frames``: float ``(F, A, K, C, H, W)`` in [-1, 1], or uint8
            ``(F, A, K, H, W, C)`` numpy array.

        Raises:
            ValueError: frames or actions of the wrong shape, dtype or range.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        stacked, as_uint8 = self._stacked(frames)
        parents, n_children = stacked.shape[0], len(actions)
        if n_children == 0:
            raise ValueError("predict_children needs at least one action")
        actions = self._actions(actions, n_children).repeat_interleave(n_samples).repeat(parents)
        z = torch.randn(len(actions), self.config.z_dim, generator=generator).to(self.device)
        predicted = self._generate(stacked, actions, z, n_children * n_samples)
        predicted = predicted.unflatten(0, (parents, n_children, n_samples))
        if as_uint8:
            return tensor_to_observations(to_uint8(predicted))
        return predicted


class _Method(nn.Module):
    """One method of a module as a module of its own (what ``torch.compile`` is given, so the
    encoder and decoder compile separately and freeze the generator's weights)."""

    def __init__(self, module: nn.Module, name: str) -> None:
        super().__init__()
        self.module = module
        self.name = name

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return getattr(self.module, self.name)(*inputs)
