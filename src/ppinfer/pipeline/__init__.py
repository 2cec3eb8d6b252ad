"""Pipeline stages: inputs (which files), preprocess (image -> tensor), postprocess (scores ->
results), labels."""
