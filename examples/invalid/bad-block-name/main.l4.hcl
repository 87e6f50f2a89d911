site "example.com" {
  plan = "enterprise"
}

application "Game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }
}
