"""Datasets on disk: ImageFolder scanning, robust image reading, recorded splits, augmentation, samples."""
