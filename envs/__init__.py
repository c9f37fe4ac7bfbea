"""rlgan's environments: pixel driving, hide-and-seek and Atari (installed as ``rlgan.envs``).

The environments know nothing of agents or world models. Every id is registered in
:mod:`rlgan.envs.registration`.
"""
