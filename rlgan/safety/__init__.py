"""SAD-GAN's safety layer: a safety classifier, a game-tree safety search and the shield.

- :mod:`rlgan.safety.classifier`: (frame t, frame t+1) -> P(unsafe), AlexNet-style;
  :mod:`rlgan.safety.pairs` builds its examples from recorded transitions or outcome records,
  :mod:`rlgan.safety.training` trains it (``rlgan safety train``),
  :mod:`rlgan.safety.classifier_eval` scores it (``rlgan safety eval``),
  :mod:`rlgan.safety.foresight` measures how early it foresees an unsafe step on a world
  model's rollouts (``rlgan worldmodel eval --classifier``) and
  :mod:`rlgan.safety.run` stores it in a safety run directory; :mod:`rlgan.safety.outcomes`
  collects what every action leads to from the states before an agent's unsafe steps
  (``rlgan safety collect``), for the classifier and the world model to train on.
- :mod:`rlgan.safety.search`: the batched search on a world model, depth first (one generator
  call per round, for the next child under every first action still searching) or breadth
  first (one call per level); :mod:`rlgan.safety.oracle`: the search in the true simulator;
  :mod:`rlgan.safety.tree` defines the safe depth both return.
- :mod:`rlgan.safety.shield`: :class:`Shield` (wraps any policy) and :class:`ShieldWrapper`
  (wraps a Gymnasium env); :mod:`rlgan.safety.models` builds either from ``"oracle"`` or a
  safety run; :mod:`rlgan.safety.evaluation` gives the rows of ``rlgan shield eval``.

``rlgan shield train`` (:mod:`rlgan.pipeline`) chains all of it into one recipe.
"""

from rlgan.safety.classifier import ClassifierShape, SafetyClassifier
from rlgan.safety.models import make_search, shielded_env
from rlgan.safety.oracle import OracleSearch
from rlgan.safety.outcomes import OutcomeConfig, collect_outcomes
from rlgan.safety.policies import as_policy, load_policy
from rlgan.safety.search import LearnedSearch, SearchConfig
from rlgan.safety.shield import Shield, ShieldDecision, ShieldWrapper, choose_action
from rlgan.safety.training import ClassifierConfig, train_classifier
from rlgan.safety.tree import SearchResult, safe_depths

__all__ = [
    "ClassifierConfig", "ClassifierShape", "LearnedSearch", "OracleSearch", "OutcomeConfig",
    "SafetyClassifier", "SearchConfig", "SearchResult", "Shield", "ShieldDecision", "ShieldWrapper",
    "as_policy", "choose_action", "collect_outcomes", "load_policy", "make_search",
    "safe_depths", "shielded_env", "train_classifier",
]
