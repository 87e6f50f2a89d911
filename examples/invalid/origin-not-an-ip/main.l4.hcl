site "example.com" {
  plan = "enterprise"
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "origin.example.net"
    origin_port = "17000"
    origin_type = "ip"
  }
}
