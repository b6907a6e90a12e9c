__title__ = "spacy-medlink"
__version__ = "0.1.0"
