"""thinc/PyTorch layers and one model builder per component (``medlink.X.v1``)."""
