"""The training engine: the loop, the schedule, checkpoints, previews and TensorBoard."""
