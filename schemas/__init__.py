"""JSON Schemas shipped with l4plan (config, plan, state, runtime document)."""
