site "example.com" {
  plan = "enterprise"
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "game-pool"
    origin_port = "17000"
    origin_type = "load_balancer"
  }
}
