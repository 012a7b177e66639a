// An application's read-only view of its own secrets.
path "secret/data/app/*" {
  capabilities = ["read", "list"]
}
path "secret/metadata/app/*" {
  capabilities = ["list"]
}
/* Nobody reads the database root credentials. */
path "secret/data/app/db-root" {
  capabilities = ["deny"]
}
path "auth/token/lookup-self" { capabilities = ["read"] },
path "auth/token/renew-self" { capabilities = ["update"], }
