site "example.com" {
  plan = "enterprise"
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }
}

application "other" {
  domain = "other.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "6990-7005"
    origin      = "192.0.2.10"
    origin_port = "16990"
  }
}
