"""Training: the shared loop (checkpoints, resume, DDP, progress), feature cache, stages."""
