"""agents: baselines that act in the 3D BabyAI ground truth and inside GenieWorld.

Importing this package loads no weights and imports no RL library; ``make_agent`` does what is needed.
"""

from agents.agent import Agent
from agents.registry import AGENTS, AgentSpec, make_agent

__all__ = ["AGENTS", "Agent", "AgentSpec", "make_agent"]
