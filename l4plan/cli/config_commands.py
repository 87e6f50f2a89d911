"""Commands that read the configuration only: validate, schema."""

import json

import click

from l4plan.cli.options import print_diagnostics, variable_inputs, variable_options
from l4plan.config.loader import load_directory
from l4plan.config.variables import resolve
from l4plan.diagnostics import ConfigError, errors_of, report
from l4plan.schema import schema_text
from l4plan.validate import validate_document


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@variable_options
def validate(as_json, var_pairs, var_files):
    """Check the configuration against the schema and every product rule.

    Exits 0 when it is valid and 1 when it is not.
    """
    try:
        document = resolve(load_directory("."), variable_inputs(var_pairs, var_files))
        _, diagnostics = validate_document(document)
    except ConfigError as error:
        diagnostics = list(error.diagnostics)
    errors = errors_of(diagnostics)
    if as_json:
        click.echo(json.dumps(report(diagnostics), indent=2))
    else:
        print_diagnostics(diagnostics)
        if not errors:
            click.echo(click.style("Success!", fg="green", bold=True) + " The configuration is valid.")
    raise SystemExit(1 if errors else 0)


@click.command()
def schema():
    """Print the configuration JSON Schema (for editors and *.l4.json files)."""
    click.echo(schema_text("config"), nl=False)


COMMANDS = (validate, schema)
