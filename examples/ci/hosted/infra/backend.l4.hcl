# The state in PostgreSQL, shared by every job; conn_str comes from the
# PG_CONN_STR environment variable (a secret), so no password is in git.
backend "pg" {
  schema_name = "l4plan"
  name        = "prod"
}

# The runtime's admin API over TLS; its address is the repository variable
# L4PLAN_RUNTIME_ADMIN, its token the secret L4PLAN_RUNTIME_TOKEN.
variable "runtime_admin" {
  description = "the runtime's admin API, https://HOST:PORT"
}

provider "runtime" {
  admin   = var.runtime_admin
  ca_file = ".l4plan-ci/runtime-ca.pem"
}
