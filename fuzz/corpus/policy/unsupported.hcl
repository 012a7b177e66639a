path "secret/data/app" {
  capabilities = ["create"]
  allowed_parameters = {
    "password" = []
    "*" = ["a", "b"]
  }
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
  required_parameters = ["password"]
}
