site "example.com" {
  plan = "enterprise"
}

variable "game_origin" {
  description = "no default, none given"
}

application "game" {
  domain = "game.example.com"

  rule {
    protocol    = "tcp"
    edge_port   = "7000"
    origin      = "${var.game_origin}"
    origin_port = "17000"
  }
}
