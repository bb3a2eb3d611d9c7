"""Scores of images and samples: feature networks and the distances built on them."""
