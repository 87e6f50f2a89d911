site "example.com" {
  plan = "enterprise"
}

application "game" {
  domain = "game.example.com"
  rule {
    protocol = 
  }
}
