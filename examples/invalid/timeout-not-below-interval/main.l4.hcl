site "example.com" {
  plan = "enterprise"
}

load_balancer "pool" {
  origin {
    address = "192.0.2.10"
  }

  health_check {
    interval = 2
    timeout  = 2
  }
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "pool"
    origin_port = "17000"
    origin_type = "load_balancer"
  }
}
