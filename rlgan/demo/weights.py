"""The demo's two trained parts, and the small bundle shipped with rlgan.

A weights root holds ``agent/`` (a run of ``rlgan train --algo dqn`` on the day map) and
``shield/`` (a shield directory of ``rlgan shield train`` for that agent,
:class:`rlgan.pipeline.ShieldDir`). The bundle inside the package (``rlgan/demo/bundled/``)
keeps what inference loads, each network as safetensors beside its JSON settings (a few MB),
and the shield's ``settings.json``, ``report.md`` and measured tables, so a user can see how
it was made: ``rlgan shield train --env rlgan/Driving-v0 --map day --agent agent --budget demo
--out shield`` run in the bundle's directory.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rlgan.io import written_entries
from rlgan.pipeline.shield_dir import ShieldDir

BUNDLED = Path(__file__).parent / "bundled"

#: Files of a shield directory a bundle keeps (besides the networks).
SHIELD_FILES = ("settings.json", "shield.json", "calibration.json", "evaluation.json", "report.md")


@dataclass(frozen=True)
class DemoWeights:
    """A weights root (see the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def agent(self) -> Path:
        return self.root / "agent"

    @property
    def shield(self) -> ShieldDir:
        return ShieldDir(self.root / "shield")

    def check(self) -> None:
        """Raise ``FileNotFoundError`` naming the first missing part."""
        shield = self.shield
        for name, marker in (("agent", self.agent / "config.json"),
                             ("shield", shield.choice_file),
                             ("world model", shield.worldmodel / "run.json"),
                             ("safety classifier", shield.classifier / "config.json")):
            if not marker.is_file():
                raise FileNotFoundError(
                    f"no {name} in {self.root} ({marker} is missing); train the demo's shield "
                    "with: rlgan demo --from-scratch")

    def export(self, destination: str | Path) -> DemoWeights:
        """Copy the inference files into ``destination`` (replacing the weights there) and
        return it there.

        Raises:
            FileNotFoundError: a part of these weights is missing.
            FileExistsError: ``destination`` holds something other than demo weights.
        """
        from rlgan.agents.training import Run
        from rlgan.worldmodel.run import checkpoint_dir

        self.check()
        target = DemoWeights(Path(destination))
        if written_entries(target.root) and not (target.agent / "config.json").is_file():
            raise FileExistsError(f"{target.root} is not empty and holds no demo weights; export "
                                  "into an empty or new directory")
        if target.root.exists():
            shutil.rmtree(target.root)
        source, shield = self.shield, target.shield
        (shield.worldmodel / "checkpoint").mkdir(parents=True)
        shutil.copy2(source.worldmodel / "run.json", shield.worldmodel / "run.json")
        for name in ("generator.safetensors", "progress.json"):
            shutil.copy2(checkpoint_dir(source.worldmodel) / name, shield.worldmodel / "checkpoint" / name)
        shield.classifier.mkdir(parents=True)
        for name in ("config.json", "classifier.safetensors", "metrics.json"):
            if (source.classifier / name).is_file():
                shutil.copy2(source.classifier / name, shield.classifier / name)
        for name in SHIELD_FILES:
            if (source.root / name).is_file():
                shutil.copy2(source.root / name, shield.root / name)
        best = self.agent / "best"
        policy = best if (best / "policy.safetensors").is_file() else Run(self.agent).last_checkpoint()
        (target.agent / "best").mkdir(parents=True)
        shutil.copy2(self.agent / "config.json", target.agent / "config.json")
        shutil.copy2(policy / "policy.safetensors", target.agent / "best" / "policy.safetensors")
        return target

    def size_bytes(self) -> int:
        """Bytes of every file under the root."""
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())
