"""RL-RPT training pipeline: simulation, replays, IDM, labelling, behaviour cloning, evaluation."""
