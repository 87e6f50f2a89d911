"""Renderers: a plan value in, text on a stream out."""
