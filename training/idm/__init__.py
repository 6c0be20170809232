"""Inverse dynamics model: window features, model, training, evaluation, labelling."""
