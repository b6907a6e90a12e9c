"""Training-time data tools: augmenters for `[corpora.train.augmenter]`."""
