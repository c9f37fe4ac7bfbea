"""Settings of a world model (SAD-GAN or the VAE): architecture, losses, optimiser and budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rlgan.config import check_choice

MODELS = ("gan", "vae")
CONDITIONINGS = ("film", "concat")
DISCRIMINATORS = ("patch", "global", "sequence")
LR_SCHEDULES = ("constant", "cosine")
DEVICES_HINT = "'auto', 'cpu', 'cuda' or 'cuda:N'"
#: Options a run takes from its dataset (frame size, channels, actions).
FRAME_OPTIONS = ("frame_height", "frame_width", "channels", "n_actions")
#: Options of the GAN alone: a VAE run refuses them (and stores lambda_adv 0, z_dim 0).
GAN_ONLY_OPTIONS = ("lambda_adv", "adv_warmup", "d_steps", "discriminator", "conditioning", "z_dim",
                    "variety_samples", "feature_matching")
#: Options added after runs were first stored, with the value a stored run that lacks one was
#: trained with (where that is not the default).
EARLIER_VALUES = {"l2_weight": 0.0}


@dataclass(frozen=True)
class WorldModelConfig:
    """Options of ``rlgan worldmodel train`` (``--set key=value`` or the named flags).

    The defaults are the recipe of ``rlgan shield train``: lr 1e-3 decayed along a cosine over
    12,000 steps, a weak adversarial term (0.0003) ramped in over 200 steps, which keeps PSNR
    within a few hundredths of a dB of the regression model (``benchmarks/RESULTS.md``).

    The frame size, channels and number of actions are taken from the dataset when training
    starts; the values here are only defaults for building networks by hand.

    Attributes:
        model: ``"gan"``: SAD-GAN's U-Net generator (:class:`rlgan.worldmodel.model.Generator`)
            and discriminator, the regression model with ``lambda_adv = 0``; ``"vae"``: a VAE
            with latent dynamics (:class:`rlgan.worldmodel.vae.LatentDynamicsVAE`), trained on
            one process, taking none of :data:`GAN_ONLY_OPTIONS`.
        frame_height, frame_width: frame size in pixels, multiples of 16 (4 stride-2 levels).
        channels: colour channels per frame (3 RGB, 1 grayscale).
        n_actions: size of the ``Discrete`` action space.
        history: frames up to t the generator sees (1 = the SAD-GAN paper; 2-4 show motion).
        base_width: channels of the first encoder level; level l has ``base_width * 2**l``.
        z_dim: size of the noise vector z injected at the bottleneck (0 = no noise).
        action_dim: size of the learned action embedding.
        conditioning: how the action and z enter the generator: ``"film"`` (feature-wise
            scale and shift at the bottleneck and every decoder level) or ``"concat"`` (tiled as
            extra channels at the bottleneck and every decoder level).
        discriminator: ``"patch"`` (one logit per receptive field, PatchGAN) or ``"global"``
            (one logit per frame pair), each judging every step's (frame, next frame) pair; or
            ``"sequence"`` (needs ``unroll >= 2``): patch logits on a whole rollout, the
            recorded frame t and the n frames after it stacked, so D sees blur grow and motion
            drift along the rollout (a temporal discriminator, as video GANs use).
        lambda_adv: weight of the adversarial term in G's loss; 0 trains the plain regression
            baseline (the discriminator is then neither evaluated nor trained).
        adv_warmup: steps over which the adversarial weight ramps linearly from 0 to
            ``lambda_adv`` (the discriminator trains from the start), so G first learns the
            motion from the reconstruction loss; 0 starts at full weight.
        l1_weight: weight of the L1 loss of the predicted frame t+1.
        l2_weight: weight of its mean squared error (frames in [-1, 1]). Beside L1 it lifts
            one-step PSNR by about 2 dB over L1 alone (docs/findings.md); 0 trains on L1 alone.
        latent_dim: size of the VAE's latent state (VAE only).
        kl_weight: weight of the VAE's KL divergence, summed over the latent (VAE only; about
            ``1 / (H * W * C)`` is the evidence lower bound of a Laplace decoder).
        reconstruction_weight: weight of the VAE's L1 loss of frame t decoded from its own
            latent state (VAE only).
        gdl_weight: weight of the gradient-difference loss (sharper edges), 0 disables it.
        feature_matching: weight of the feature-matching loss in G's loss (GAN only, needs
            ``lambda_adv > 0``, which trains the discriminator): the L1 distance between the
            discriminator's features of the recorded and of the predicted pair, averaged over
            its levels (pix2pixHD, Wang et al. 2018). 0 disables it.
        d_steps: discriminator updates per generator update (k).
        variety_samples: noise samples z drawn per training example (GAN only). With K > 1 the
            reconstruction loss takes each example's best sample (the variety loss of Gupta et
            al. 2018), so samples may spread over the futures the data allows instead of all
            predicting their mean; the discriminator judges every sample. 1 trains on one.
        unroll: steps of its own rollout the model trains on per update (1: one-step
            prediction, as in SAD-GAN). With n > 1 a batch holds n consecutive recorded steps:
            the model predicts t+1 from the recorded frames, then t+2 from its own
            prediction, and so on, as rollouts and the game tree feed it; the losses (and the
            GAN discriminator's judgement) of all n steps are averaged, and the gradients flow
            back through the predictions. Needs recorded episodes, not outcome records.
        learning_rate, beta1, beta2: Adam settings of both networks (DCGAN's beta1 0.5; a
            CPU budget learns faster at 1e-3 than at DCGAN's 2e-4).
        lr_schedule: ``"constant"`` (DCGAN) or ``"cosine"``: both networks' rate follows half
            a cosine from ``learning_rate`` at the first step to 0 at ``steps`` (set from the
            step, so ``--resume`` continues the same curve).
        batch_size: transitions per batch and process (under torchrun each rank draws its own).
        unsafe_fraction: share of every batch drawn from the training transitions recorded as
            unsafe, in [0, 1): crashes are rare (about 1 in 500 recorded steps), so without it
            the generator hardly sees one; 0 draws every transition alike.
        colour_jitter: share of every batch recoloured, in [0, 1]: a random channel order, gain
            and offset per transition, the same for its history and next frame
            (:func:`rlgan.data.augment.jitter_colours`), so the model also reads maps of other
            palettes; 0 trains on the recorded colours only.
        steps: generator updates in all (``--resume`` continues up to this count).
        val_fraction: fraction of episodes held out for validation and ``eval``.
        seed: seeds weights, batch sampling, noise and the episode split.
        log_every: steps between logged scalars (TensorBoard, progress bar).
        sample_every: steps between sample grids (TensorBoard and ``samples.png``).
        checkpoint_every: steps between checkpoints (one is always written at the end).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    model: str = "gan"
    frame_height: int = 64
    frame_width: int = 64
    channels: int = 3
    n_actions: int = 3
    history: int = 2
    base_width: int = 16
    z_dim: int = 8
    action_dim: int = 16
    conditioning: str = "film"
    discriminator: str = "patch"
    lambda_adv: float = 0.0003
    adv_warmup: int = 200
    l1_weight: float = 1.0
    l2_weight: float = 10.0
    latent_dim: int = 64
    kl_weight: float = 1e-4
    reconstruction_weight: float = 1.0
    gdl_weight: float = 0.0
    feature_matching: float = 0.0
    d_steps: int = 1
    variety_samples: int = 1
    unroll: int = 1
    learning_rate: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    lr_schedule: str = "cosine"
    batch_size: int = 32
    unsafe_fraction: float = 0.0
    colour_jitter: float = 0.0
    steps: int = 12000
    val_fraction: float = 0.2
    seed: int = 0
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("frame_height", "frame_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 16 or value % 16:
                raise ValueError(f"{name} must be a positive multiple of 16 (the generator halves "
                                 f"the frame 4 times), got {value!r}")
        check_choice("model", self.model, MODELS)
        positive = ("channels", "n_actions", "history", "base_width", "action_dim", "d_steps",
                    "variety_samples", "unroll",
                    "latent_dim", "batch_size", "log_every", "sample_every", "checkpoint_every", "steps")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("z_dim", "adv_warmup", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.n_actions < 2:
            raise ValueError(f"n_actions must be >= 2 (a world model conditions on the action), "
                             f"got {self.n_actions}")
        check_choice("conditioning", self.conditioning, CONDITIONINGS)
        check_choice("discriminator", self.discriminator, DISCRIMINATORS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("lambda_adv", "l1_weight", "l2_weight", "gdl_weight", "feature_matching",
                     "kl_weight", "reconstruction_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.variety_samples > 1 and self.z_dim == 0:
            raise ValueError(f"variety_samples={self.variety_samples} draws several noise samples z: "
                             "it needs the GAN with z_dim >= 1")
        if self.discriminator == "sequence" and self.unroll < 2:
            raise ValueError("discriminator='sequence' judges whole rollouts: it needs unroll >= 2, "
                             f"got unroll={self.unroll}")
        if self.feature_matching and not self.lambda_adv:
            raise ValueError(f"feature_matching={self.feature_matching} compares the "
                             "discriminator's features, which trains only with lambda_adv > 0")
        if not any((self.l1_weight, self.l2_weight, self.gdl_weight, self.lambda_adv)):
            raise ValueError("l1_weight, l2_weight, gdl_weight and lambda_adv are all 0: nothing to train")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not isinstance(self.unsafe_fraction, (int, float)) or isinstance(self.unsafe_fraction, bool) \
                or not 0.0 <= self.unsafe_fraction < 1.0:
            raise ValueError(f"unsafe_fraction must be a number in [0, 1), got {self.unsafe_fraction!r}")
        if not isinstance(self.colour_jitter, (int, float)) or isinstance(self.colour_jitter, bool) \
                or not 0.0 <= self.colour_jitter <= 1.0:
            raise ValueError(f"colour_jitter must be a number in [0, 1], got {self.colour_jitter!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be {DEVICES_HINT}, got {self.device!r}")

    def learning_rate_at(self, step: int) -> float:
        """Adam's rate for update ``step`` (1-based) under :attr:`lr_schedule`."""
        if self.lr_schedule == "constant" or self.steps <= 1:
            return self.learning_rate
        progress = min(max(step - 1, 0) / (self.steps - 1), 1.0)
        return 0.5 * self.learning_rate * (1.0 + math.cos(math.pi * progress))

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one frame (the observation layout)."""
        return (self.frame_height, self.frame_width, self.channels)
