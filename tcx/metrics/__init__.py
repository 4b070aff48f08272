"""Disentanglement metrics as functions on tensors (see each module for its paper)."""
