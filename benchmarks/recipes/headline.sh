#!/usr/bin/env bash
# The headline experiment: PPO trained only inside GenieWorld (default world model, reward = default success judge)
# on open-the-red-door and go-to-the-red-ball, beside PPO trained in the 3D BabyAI ground truth with the same
# budget and the random agent; every agent evaluated on unseen worlds (test seeds), in GenieWorld and in the ground
# truth, then the headline table, the agreement correlation and BENCHMARKS.md. Every step writes under runs/ or
# benchmarks/results/ and can be rerun.
#
#   bash benchmarks/recipes/headline.sh          # from the repository root, in the project's venv
#   PPO_STEPS=100000 EPISODES=64 bash benchmarks/recipes/headline.sh    # a bigger budget
set -euo pipefail
PPO_STEPS="${PPO_STEPS:-8192}"      # environment steps per PPO agent (the same in both worlds)
EPISODES="${EPISODES:-24}"          # evaluation episodes per task and world
TASKS="open-red-door go-to-red-ball"
BENCH=runs/bench/headline

for task in $TASKS; do
  [ -f "runs/agents/ppo-gt-$task/agent.json" ] || \
    genie-agent train ppo-gt --task "$task" --timesteps "$PPO_STEPS" --num-envs 16 --batch-size 256 --out "runs/agents/ppo-gt-$task" --seed 0
  [ -f "runs/agents/ppo-genie-$task/agent.json" ] || \
    genie-agent train ppo-genie --task "$task" --timesteps "$PPO_STEPS" --num-envs 16 --batch-size 256 \
      --out "runs/agents/ppo-genie-$task" --seed 0
done

for task in $TASKS; do
  for agent in random "ppo-gt=runs/agents/ppo-gt-$task" "ppo-genie=runs/agents/ppo-genie-$task"; do
    name="${agent%%=*}"
    [ -f "$BENCH/$task/$name/tasks.json" ] || \
      genie-bench run tasks --agent "$agent" --tasks "$task" --episodes "$EPISODES" --batch 16 --videos 1 \
        --out "$BENCH/$task/$name"
  done
done

python -m benchmarks.headline "$BENCH"/*/*/tasks.json --out benchmarks/results/headline/headline.json
genie-bench run agreement --from-results "$BENCH"/*/*/tasks.json --out benchmarks/results/agreement
genie-bench report --results benchmarks/results --out BENCHMARKS.md
