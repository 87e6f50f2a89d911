# An example infra directory for the hosted-runner workflow: the quick start's
# application; backend.l4.hcl holds the pg backend and the TLS provider.
site "example.com" {
  plan = "enterprise"
}

application "echo" {
  domain = "echo.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "127.0.0.1"
    origin_port = "17000"
    comment     = "TCP echo"
  }

  rule {
    protocol    = "udp"
    edge_port   = "7000"
    origin      = "127.0.0.1"
    origin_port = "17000"
    comment     = "UDP echo"
  }
}
