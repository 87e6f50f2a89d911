site "example.com" {
  plan = "enterprise"
}

ip_access_rule "office" {
  action   = "allow"
  sources  = ["192.0.2.7/24"]
  priority = 1
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
