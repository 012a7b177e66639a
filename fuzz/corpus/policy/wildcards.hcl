path "secret/data/+/config" {
  capabilities = ["read"]
}
path "secret/data/team-+/+/*" {
  capabilities = ["create", "update", "patch"]
}
path "secret/+" { capabilities = ["subscribe", "list"] }
path "secret/data/{{identity.entity.id}}/*" {
  capabilities = ["read"]
}
