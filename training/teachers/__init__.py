"""Teachers that play in simulation to make IDM training data: Nexto (a TorchScript RL bot) and random play."""
