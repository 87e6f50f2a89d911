# The smallest useful configuration: one application with a TCP and a UDP
# rule in front of an echo origin on this machine (see the README).
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
