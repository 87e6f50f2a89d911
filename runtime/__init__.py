"""The Twisted proxy runtime. Imports nothing from the engine, providers or CLI."""
