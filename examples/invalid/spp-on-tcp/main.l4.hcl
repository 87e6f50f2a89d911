site "example.com" {
  plan = "enterprise"
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol              = "tcp"
    edge_port             = "7000"
    origin                = "192.0.2.10"
    origin_port           = "17000"
    client_ip_passthrough = "simple_proxy_protocol"
  }
}
