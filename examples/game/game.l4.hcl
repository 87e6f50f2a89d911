application "game" {
  domain                = "game.example.com"
  ipv6                  = true
  waf_ip_access_control = true
  keepalive_protection  = true

  lifecycle {
    prevent_destroy = true
  }

  # Eleven match servers: edge 7000 reaches 17000, 7005 reaches 17005.
  rule {
    protocol              = "tcp"
    edge_port             = "7000-7010"
    origin_type           = "ip"
    origin                = var.game_origin
    origin_port           = "17000-17010"
    client_ip_passthrough = "proxy_protocol_v2"
    comment               = "match servers"
  }

  # The lobby: new connections spread over the pool.
  rule {
    protocol              = "tcp"
    edge_port             = "8000,8443"
    origin_type           = "load_balancer"
    origin                = "game-pool"
    origin_port           = "9000"
    client_ip_passthrough = "proxy_protocol_v1"
    comment               = "lobby"
  }

  # Game state over UDP, round-robin over four origin ports.
  rule {
    protocol              = "udp"
    edge_port             = "7000"
    origin                = "${var.game_origin}"
    origin_port           = "27000-27003"
    client_ip_passthrough = "proxy_protocol_v2"
    comment               = "state sync for ${var.game_origin}"
  }
}
