path "secret/data/x" {
  capabilities = ["read"]
  control_group = {
    factor "ops" {
      identity { group_names = ["ops", ["nested", [1, 2.5, -3, true, false]]] }
    }
  }
}
