"""SAD-GAN's networks: an action-conditioned U-Net generator and a conditional discriminator.

DCGAN conventions (Radford et al. 2016): strided convolutions instead of pooling, batch norm,
ReLU in the generator and LeakyReLU(0.2) in the discriminator, a tanh output, N(0, 0.02)
weights. Frames are float tensors in [-1, 1], channels first. Shapes below are for frames of
``H x W`` pixels with ``C`` channels, ``h`` frames of history and base width ``w``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlgan.worldmodel.config import WorldModelConfig

#: Initial logit of the generator's mask: sigmoid(3) = 0.95 of the output is the warped frame.
MASK_BIAS = 3.0


def _grid_sample_border(frame: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear ``grid_sample`` with border padding and aligned corners (the generator's warp)."""
    return F.grid_sample(frame, grid, mode="bilinear", padding_mode="border", align_corners=True)


@torch.library.custom_op("rlgan::grid_sample_border", mutates_args=())
def opaque_grid_sample_border(frame: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """:func:`_grid_sample_border` as one opaque operator that ``torch.compile`` calls as it is.

    Inductor otherwise decomposes ``grid_sample`` into scalar gathers, which on the CPU (and on
    channels-last frames above all) take about five times as long as ATen's own kernel: a
    quarter of the compiled generator's time at a batch of 27. Inference only (no gradient).
    """
    return _grid_sample_border(frame, grid)


@opaque_grid_sample_border.register_fake
def _(frame: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return frame.new_empty(frame.shape[0], frame.shape[1], grid.shape[1], grid.shape[2])


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02); batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Conditioner(nn.Module):
    """Injects the condition vector (action embedding and z) into a feature map.

    ``"film"``: ``x * (1 + gamma(c)) + beta(c)`` per channel, applied after batch norm.
    ``"concat"``: ``c`` tiled over the map as extra channels, applied before the convolution
    (so the convolution's input has ``channels + cond_dim`` channels).
    """

    def __init__(self, mode: str, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.mode = mode
        self.film = nn.Linear(cond_dim, 2 * channels) if mode == "film" else None

    def extra_input_channels(self, cond_dim: int) -> int:
        """Channels this conditioner adds before the convolution."""
        return cond_dim if self.mode == "concat" else 0

    def before_conv(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.mode != "concat":
            return x
        tiled = cond[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return torch.cat([x, tiled], dim=1)

    def after_norm(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.film is None:
            return x
        gamma, beta = self.film(cond).chunk(2, dim=1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class UpBlock(nn.Module):
    """Conditioned ``ConvTranspose2d(4, stride 2)`` -> BN -> (FiLM) -> ReLU: doubles H and W."""

    def __init__(self, in_channels: int, out_channels: int, mode: str, cond_dim: int) -> None:
        super().__init__()
        self.cond = Conditioner(mode, cond_dim, out_channels)
        extra = self.cond.extra_input_channels(cond_dim)
        self.conv = nn.ConvTranspose2d(in_channels + extra, out_channels, 4, 2, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(self.cond.before_conv(x, cond)))
        return torch.relu(self.cond.after_norm(x, cond))


class Bottleneck(nn.Module):
    """Residual conditioned ``Conv2d(3)`` -> BN -> (FiLM) -> ReLU at (H/16, W/16)."""

    def __init__(self, channels: int, mode: str, cond_dim: int) -> None:
        super().__init__()
        self.cond = Conditioner(mode, cond_dim, channels)
        extra = self.cond.extra_input_channels(cond_dim)
        self.conv = nn.Conv2d(channels + extra, channels, 3, 1, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(self.cond.before_conv(x, cond)))
        return torch.relu(x + self.cond.after_norm(y, cond))


def down_block(in_channels: int, out_channels: int, norm: bool, activation: nn.Module) -> nn.Sequential:
    """``Conv2d(4, stride 2)`` [-> BN] -> activation: halves H and W."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(activation)
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """G(frames up to t, action, z) -> frame t+1, a U-Net that moves pixels and paints new ones.

    Encoder (``w`` = ``base_width``)::

        frames (B, h*C, H, W) -> e1 (B, w, H/2)  -> e2 (B, 2w, H/4) -> e3 (B, 4w, H/8)
                              -> e4 (B, 8w, H/16)                       [strided conv, BN, ReLU]

    The condition ``c = [embedding(action), z]`` enters the residual bottleneck and each
    decoder level (FiLM or tiled channels), so skips cannot make the output ignore the action::

        e4 -> bottleneck -> up (B, 4w, H/8) + e3 -> up (B, 2w, H/4) + e2 -> up (B, w, H/2) + e1
           -> flow: Conv2d(3) -> (B, 2, H/2, W/2), bilinear x2 -> (B, 2, H, W) pixels
           -> up (B, w/2, H) ++ frames ++ warped -> Conv2d(1) -> refinement r (B, C), mask m (B, 1)

    (``+``: skips are added, which costs half of concatenating them; ``++``: concatenated.)
        warped = last frame resampled along the flow (bilinear)
        output = sigmoid(m) * warped + (1 - sigmoid(m)) * tanh(r)   in [-1, 1]

    Most of a driving frame's change is motion (the road scrolls and shifts with speed and
    steering), which a smooth flow field explains with few parameters; the tanh branch paints
    what motion cannot (new cars, the horizon). The untrained generator copies the last frame
    (zero flow, mask near 1).
    """

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        w, c, mode = config.base_width, config.channels, config.conditioning
        in_channels = config.history * c
        self.action_embedding = nn.Embedding(config.n_actions, config.action_dim)
        cond_dim = config.action_dim + config.z_dim
        self.encoder = nn.ModuleList([
            down_block(in_channels, w, False, nn.ReLU()),
            down_block(w, 2 * w, True, nn.ReLU()),
            down_block(2 * w, 4 * w, True, nn.ReLU()),
            down_block(4 * w, 8 * w, True, nn.ReLU()),
        ])
        self.bottleneck = Bottleneck(8 * w, mode, cond_dim)
        out_width = max(4, w // 2)
        self.decoder = nn.ModuleList([
            UpBlock(8 * w, 4 * w, mode, cond_dim),
            UpBlock(4 * w, 2 * w, mode, cond_dim),
            UpBlock(2 * w, w, mode, cond_dim),
            UpBlock(w, out_width, mode, cond_dim),
        ])
        self.flow = nn.Conv2d(w, 2, 3, 1, 1)
        self.head = nn.Conv2d(out_width + in_channels + c, c + 1, 1)
        self.apply(dcgan_init)
        nn.init.zeros_(self.flow.weight)  # start from the identity warp
        nn.init.constant_(self.head.bias[c:], MASK_BIAS)  # ... keeping the warped frame
        height, width = config.frame_height, config.frame_width
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width),
                                indexing="ij")
        self.register_buffer("identity_grid", torch.stack([xs, ys], dim=-1)[None], persistent=False)
        self.register_buffer("pixels_to_grid", torch.tensor([2 / max(width - 1, 1),
                                                             2 / max(height - 1, 1)]),
                             persistent=False)

    def warp(self, frame: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Sample ``frame`` (B, C, H, W) at ``position + flow`` (flow (B, 2, H, W): x, y pixels)."""
        grid = self.identity_grid + flow.permute(0, 2, 3, 1) * self.pixels_to_grid
        if torch.compiler.is_compiling():
            return opaque_grid_sample_border(frame, grid)
        return _grid_sample_border(frame, grid)

    def forward(self, frames: torch.Tensor, action: torch.Tensor,
                z: torch.Tensor | None = None) -> torch.Tensor:
        """Predict frame t+1.

        Args:
            frames: float ``(B, history*C, H, W)`` in [-1, 1], frames t-history+1..t stacked
                on the channel axis (oldest first).
            action: int64 ``(B,)`` action taken at t.
            z: float ``(B, z_dim)`` noise, or None for zeros (the mean prediction).

        Returns:
            float ``(B, C, H, W)`` in [-1, 1].
        """
        if z is None:
            z = frames.new_zeros(frames.shape[0], self.config.z_dim)
        return self.decode(frames, *self.encode(frames), action, z)

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The encoder's maps ``e1..e4`` of ``frames`` (B, history*C, H, W): they do not depend
        on the action or the noise, so a search encodes each node once for all its children."""
        features = []
        x = frames
        for down in self.encoder:
            x = down(x)
            features.append(x)
        return tuple(features)

    def decode(self, frames: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor, e3: torch.Tensor,
               e4: torch.Tensor, action: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Frame t+1 from the frames, their encoder maps (:meth:`encode`), the action and the
        noise z ``(B, z_dim)``: float ``(B, C, H, W)`` in [-1, 1]."""
        channels = self.config.channels
        cond = torch.cat([self.action_embedding(action), z], dim=1)  # (B, action_dim + z_dim)
        x = self.bottleneck(e4, cond)  # (B, 8w, H/16, W/16)
        for up, skip in zip(self.decoder[:3], (e3, e2, e1)):
            x = up(x, cond) + skip  # ... -> (B, w, H/2, W/2)
        flow = F.interpolate(self.flow(x), scale_factor=2, mode="bilinear", align_corners=False)
        warped = self.warp(frames[:, -channels:], flow)  # (B, C, H, W)
        x = torch.cat([self.decoder[3](x, cond), frames, warped], dim=1)
        refined, mask = self.head(x).contiguous().split([channels, 1], dim=1)  # NCHW slices
        mask = torch.sigmoid(mask)
        return mask * warped + (1 - mask) * torch.tanh(refined)  # (B, C, H, W)


class Discriminator(nn.Module):
    """D(frame t, frame t+1, action) -> real/fake logits, with a projection on the action.

    ``[frame t, frame t+1]`` (B, 2C, H, W) -> (B, w, H/2) -> (B, 2w, H/4) -> (B, 4w, H/8)
    [strided conv, BN except first, LeakyReLU 0.2]. Patch: a 3x3 conv gives one logit per
    location (B, H/8 * W/8). Global: one more level (B, 8w, H/16), averaged to (B, 8w), a
    linear layer gives (B, 1). Either adds ``<embedding(action), features>`` (projection
    discriminator, Miyato & Koyama 2018), so D judges whether the change fits the action.
    Sequence: the patch form on ``[frame t, frames t+1..t+n]`` (B, (n+1)C, H, W) with the
    ``n = unroll`` actions (B, n), whose embeddings are averaged for the projection.
    """

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        w, c = config.base_width, config.channels
        frames = 1 + (config.unroll if config.discriminator == "sequence" else 1)
        layers = [down_block(frames * c, w, False, nn.LeakyReLU(0.2)),
                  down_block(w, 2 * w, True, nn.LeakyReLU(0.2)),
                  down_block(2 * w, 4 * w, True, nn.LeakyReLU(0.2))]
        features = 4 * w
        if config.discriminator == "global":
            layers.append(down_block(4 * w, 8 * w, True, nn.LeakyReLU(0.2)))
            features = 8 * w
        self.features = nn.Sequential(*layers)
        self.head = (nn.Linear(features, 1) if config.discriminator == "global"
                     else nn.Conv2d(features, 1, 3, 1, 1))
        self.action_embedding = nn.Embedding(config.n_actions, features)
        self.apply(dcgan_init)
        nn.init.normal_(self.action_embedding.weight, 0.0, 0.02)

    def forward(self, frame: torch.Tensor, next_frame: torch.Tensor,
                action: torch.Tensor) -> torch.Tensor:
        """Logits that ``next_frame`` is the real frame after ``frame`` under ``action``.

        Args:
            frame, next_frame: float ``(B, C, H, W)`` in [-1, 1] (sequence: ``next_frame`` is
                frames t+1..t+n stacked on the channel axis, ``(B, n*C, H, W)``).
            action: int64 ``(B,)`` (sequence: ``(B, n)``).

        Returns:
            float ``(B, P)`` logits: ``P = (H/8) * (W/8)`` patches, or 1 for ``"global"``.
        """
        return self.logits(self.levels(frame, next_frame)[-1], action)

    def levels(self, frame: torch.Tensor, next_frame: torch.Tensor) -> list[torch.Tensor]:
        """The output of each of D's levels on the pair, float ``(B, w * 2**l, H / 2**(l+1),
        W / 2**(l+1))`` for level ``l``; the last feeds :meth:`logits` (feature matching
        compares them between recorded and predicted pairs)."""
        levels, x = [], torch.cat([frame, next_frame], dim=1)
        for level in self.features:
            x = level(x)
            levels.append(x)
        return levels

    def logits(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s logits from D's last level ``features`` and the action."""
        embedding = self.action_embedding(action)  # (B, F), or (B, n, F) for a sequence
        if embedding.dim() == 3:
            embedding = embedding.mean(dim=1)
        if self.config.discriminator == "global":
            pooled = features.mean(dim=(2, 3))  # (B, F)
            return self.head(pooled) + (embedding * pooled).sum(dim=1, keepdim=True)
        logits = self.head(features) + (embedding[:, :, None, None] * features).sum(dim=1, keepdim=True)
        return logits.flatten(1)  # (B, H/8 * W/8)
