"""Configuration loading: files → one raw document with source positions."""
