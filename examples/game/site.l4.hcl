# The site, its WAF IP access rules, the origin pool and the variables the
# applications share.
site "example.com" {
  plan                                = "enterprise"
  ddos_full_protection                = true
  china_mainland_network_optimization = false
  fixed_ipv4                          = false
  layer7_domains                      = ["www.example.com"]
  load_balancing_domains              = ["lb.example.com"]
  edge_function_domains               = ["fn.example.com"]
}

variable "game_origin" {
  default     = "203.0.113.10"
  description = "origin of the match servers"
}

variable "voice_origin" {
  default     = "voice-origin.example.net"
  description = "host name of the voice relay"
}

ip_access_rule "block-scanners" {
  action   = "deny"
  sources  = ["198.51.100.0/24", "2001:db8:bad::/48"]
  priority = 10
}

ip_access_rule "office" {
  action   = "allow"
  sources  = ["192.0.2.0/24"]
  priority = 5
}

load_balancer "game-pool" {
  algorithm = "least_connections"

  origin {
    address = "192.0.2.10"
    weight  = 2
  }

  origin {
    address = "192.0.2.11"
  }

  health_check {
    interval            = 5
    timeout             = 2
    unhealthy_threshold = 3
    healthy_threshold   = 2
  }
}
