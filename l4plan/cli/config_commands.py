"""Commands that read the configuration only: validate, schema."""

COMMANDS = ()
