site "example.com" {
  plan = "enterprise"
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "3000-3010"
    origin      = "192.0.2.10"
    origin_port = "5000-5005"
  }
}
