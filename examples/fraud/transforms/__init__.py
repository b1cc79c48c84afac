"""Transformations of the fraud example, importable from the folder of featurestore.yaml."""
