"""backend blocks as validate and the CLI see them."""

from tests.servers import free_port

SITE = 'site "example.com" {\n  plan = "enterprise"\n}\n'


def test_a_bad_lock_ttl_is_named_at_its_line(write_config, cli):
    write_config({"main.l4.hcl": SITE + 'backend "etcd" {\n  lock_ttl = "15 sec"\n}\n'})
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: main.l4.hcl:5:3: backend.etcd.lock_ttl: "15 sec" is not a duration')


def test_an_unknown_backend_is_refused_by_validate(write_config, cli):
    write_config({"main.l4.hcl": SITE + 'backend "s3" {\n  bucket = "b"\n}\n'})
    result = cli("validate")
    assert result.exit_code == 1 and "backend" in result.stderr and "s3" in result.stderr


def test_plan_against_an_unreachable_database_is_one_line_without_the_password(write_config, cli):
    port = free_port()
    url = f"postgresql://l4plan:pw-never-shown@127.0.0.1:{port}/l4plan"
    write_config({"main.l4.hcl": SITE + f'backend "pg" {{\n  conn_str = "{url}"\n}}\n'})
    for command in (("plan",), ("state", "list"), ("show",)):
        result = cli(*command)
        assert result.exit_code == 1, command
        assert result.stderr.startswith(f'Error: backend "pg" (host=127.0.0.1 port={port} dbname=l4plan user=l4plan, schema l4plan, state default): cannot connect')
        assert "pw-never-shown" not in result.stderr + result.stdout
        assert result.stderr.count("\n") == 1
