# Admin: everything under sys/, with sudo on the root-protected paths.
path "sys/*" {
  capabilities = ["create", "read", "update", "delete", "list", "sudo"]
}
path "sys/seal" { capabilities = ["update", "sudo"] }
path "auth/*" {
  capabilities = ["create", "read", "update", "delete", "list", "sudo"]
}
