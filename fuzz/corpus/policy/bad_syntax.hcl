path "a" {
  capabilities = ["read" "list"]
}
path "b" { capabilities ["read"] }
