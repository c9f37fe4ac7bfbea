"""The demo's three trained parts, as run directories, and the small bundle shipped with rlgan.

A weights root holds ``worldmodel/`` (``rlgan worldmodel train``), ``safety/``
(``rlgan safety train``) and ``agent/`` (``rlgan train --algo dqn``). The bundle inside the
package (``rlgan/demo/bundled/``) keeps only what inference loads: the generator, the
classifier and the Q-network, each as safetensors with its JSON settings (a few MB in all).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from rlgan.io import write_json

BUNDLED = Path(__file__).parent / "bundled"


@dataclass(frozen=True)
class DemoWeights:
    """A weights root (see the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def worldmodel(self) -> Path:
        return self.root / "worldmodel"

    @property
    def safety(self) -> Path:
        return self.root / "safety"

    @property
    def agent(self) -> Path:
        return self.root / "agent"

    def check(self) -> None:
        """Raise ``FileNotFoundError`` naming the first missing part."""
        for name, marker in (("world model", self.worldmodel / "run.json"),
                             ("safety classifier", self.safety / "config.json"),
                             ("agent", self.agent / "config.json")):
            if not marker.is_file():
                raise FileNotFoundError(
                    f"no {name} in {self.root} ({marker} is missing); train the demo's weights "
                    "with: rlgan demo --from-scratch")

    def export(self, destination: str | Path) -> DemoWeights:
        """Copy the inference files into ``destination`` (replacing it) and return it there.

        The safety run's world model is recorded relative to it (``../worldmodel``), so the
        bundle works wherever it is installed.
        """
        self.check()
        target = DemoWeights(Path(destination))
        if target.root.exists():
            shutil.rmtree(target.root)
        wm_checkpoint = _world_model_checkpoint(self.worldmodel)
        (target.worldmodel / "checkpoint").mkdir(parents=True)
        shutil.copy2(self.worldmodel / "run.json", target.worldmodel / "run.json")
        for name in ("generator.safetensors", "progress.json"):
            shutil.copy2(wm_checkpoint / name, target.worldmodel / "checkpoint" / name)
        target.safety.mkdir(parents=True)
        for name in ("classifier.safetensors", "metrics.json"):
            if (self.safety / name).is_file():
                shutil.copy2(self.safety / name, target.safety / name)
        config = json.loads((self.safety / "config.json").read_text())
        write_json(target.safety / "config.json", {**config, "worldmodel_run": "../worldmodel"})
        (target.agent / "best").mkdir(parents=True)
        shutil.copy2(self.agent / "config.json", target.agent / "config.json")
        shutil.copy2(_agent_checkpoint(self.agent) / "policy.safetensors",
                     target.agent / "best" / "policy.safetensors")
        return target

    def size_bytes(self) -> int:
        """Bytes of every file under the root."""
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())


def _world_model_checkpoint(run: Path) -> Path:
    from rlgan.worldmodel.run import checkpoint_dir

    return checkpoint_dir(run)


def _agent_checkpoint(run: Path) -> Path:
    from rlgan.agents.training import Run

    best = run / "best"
    return best if (best / "policy.safetensors").is_file() else Run(run).last_checkpoint()
