"""Putting the pieces together: builders from config, the training loop, evaluation."""
