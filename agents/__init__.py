"""rlgan's agents (installed as ``rlgan.agents``): tabular Q-learning and SB3's DQN with
Double-DQN and dueling options, trained in run directories with exact resume.

Heavy modules are imported on use: ``from rlgan.agents.dqn import DQN``,
``from rlgan.agents.qlearning import QLearningAgent``,
``from rlgan.agents.training import train, load_trained``.
"""
