"""``rlgan demo``: the SAD-GAN pipeline end to end on the driving game.

- :mod:`rlgan.demo.weights`: the three trained parts (world model, safety classifier, agent)
  and the small bundle shipped with rlgan;
- :mod:`rlgan.demo.pipeline`: ``--from-scratch``, the ``rlgan`` commands that train them;
- :mod:`rlgan.demo.evaluation`: the agent alone and under the GAN and oracle shields;
- :mod:`rlgan.demo.showcase`: the real game beside the predictions for every action;
- :mod:`rlgan.demo.report`: ``report.md``, its plots and ``results.json``.
"""
