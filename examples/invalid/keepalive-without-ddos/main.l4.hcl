site "example.com" {
  plan                 = "enterprise"
  ddos_full_protection = false
  fixed_ipv4           = false
}

application "game" {
  domain               = "game.example.com"
  keepalive_protection = true

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }
}
