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

  rule {
    protocol    = "tcp"
    edge_port   = "7001"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7002"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7003"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7004"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7005"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7006"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7007"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7008"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7009"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7010"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7011"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7012"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7013"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7014"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7015"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7016"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7017"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7018"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7019"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7020"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7021"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7022"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7023"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7024"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7025"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7026"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7027"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7028"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7029"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }

  rule {
    protocol    = "tcp"
    edge_port   = "7030"
    origin      = "192.0.2.10"
    origin_port = "17000"
  }
}
